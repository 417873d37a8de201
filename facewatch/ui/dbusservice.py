"""Objects served on the D-Bus session bus over one jeepney connection: method calls, properties, signals.

jeepney is pure Python (no GLib, no C extension), so the tray menu works in a plain venv where PyGObject
cannot be built. jeepney only speaks the wire protocol; this module adds what a service needs on top:
1. Incoming method calls and subscribed signals go through one bounded queue to one dispatcher thread, so
   handlers never run concurrently and never run on jeepney's receiver thread (which must stay free to deliver
   the replies our own calls wait for).
2. org.freedesktop.DBus.Properties (Get, GetAll; every property is read-only) and Introspectable are answered
   from the same Interface tables that route the calls, so the two cannot disagree.
3. A handler that raises answers the caller with an error and logs one line: a bad call from another program
   never takes the service down.
4. A call flagged NO_REPLY_EXPECTED gets no reply.
5. The bus hanging up (the session ends) stops the receiver with one log line, not a thread traceback.
6. close() waits for calls still waiting for a reply: jeepney's receiver, stopped under such a call just as its
   reply lands, fails in its own thread.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from jeepney import (
    DBusAddress,
    HeaderFields,
    MatchRule,
    Message,
    MessageFlag,
    MessageType,
    message_bus,
    new_error,
    new_method_call,
    new_method_return,
    new_signal,
)
from jeepney.bus import get_bus
from jeepney.io.blocking import prep_socket
from jeepney.io.common import RouterClosed
from jeepney.io.threading import DBusConnection, DBusRouter, ReceiveStopped
from jeepney.wrappers import DBusErrorResponse, unwrap_msg

log = logging.getLogger(__name__)

PROPERTIES = "org.freedesktop.DBus.Properties"
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
AUTH_TIMEOUT_S = 2.0  # how long connecting to the bus may take
CALL_TIMEOUT_S = 5.0  # how long a call to another program waits for its reply
QUEUE_SIZE = 256  # incoming calls and signals waiting for the dispatcher; more are dropped (rule 1)
_STOP = object()


class BusError(RuntimeError):
    """The session bus is missing, refused us, or a call on it failed; the message says which."""


@dataclass(frozen=True)
class Method:
    """One callable method: its argument and reply signatures and the Python function that answers it."""

    in_sig: str
    out_sig: str
    call: Callable[..., tuple]


@dataclass
class Interface:
    """What one D-Bus interface of an object offers: methods, read-only properties (signature, getter), signals."""

    name: str
    methods: dict[str, Method] = field(default_factory=dict)
    properties: dict[str, tuple[str, Callable[[], Any]]] = field(default_factory=dict)
    signals: dict[str, str] = field(default_factory=dict)


def split_signature(sig: str) -> list[str]:
    """A signature cut into its single complete types: "ia{sv}(ii)" -> ["i", "a{sv}", "(ii)"]."""
    types, start, depth = [], 0, 0
    for i, char in enumerate(sig):
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        if depth == 0 and char != "a":
            types.append(sig[start:i + 1])
            start = i + 1
    return types


def introspection_xml(interfaces: list[Interface], children: Sequence[str] = ()) -> str:
    """The Introspect answer for an object with these interfaces and child nodes."""
    def args(sig: str, direction: str = "") -> str:
        where = f' direction="{direction}"' if direction else ""
        return "".join(f'<arg type="{t}"{where}/>' for t in split_signature(sig))

    parts = ['<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN" '
             '"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">', "<node>"]
    for iface in interfaces:
        parts.append(f'<interface name="{iface.name}">')
        parts += [f'<method name="{n}">{args(m.in_sig, "in")}{args(m.out_sig, "out")}</method>'
                  for n, m in iface.methods.items()]
        parts += [f'<property name="{n}" type="{sig}" access="read"/>' for n, (sig, _) in iface.properties.items()]
        parts += [f'<signal name="{n}">{args(s)}</signal>' for n, s in iface.signals.items()]
        parts.append("</interface>")
    parts += [f'<node name="{c}"/>' for c in children]
    parts.append("</node>")
    return "".join(parts)


class Service:
    """One session-bus connection that serves exported objects and calls other programs' methods."""

    def __init__(self, router: DBusRouter) -> None:
        self.router = router
        self.objects: dict[str, dict[str, Interface]] = {}
        self._handlers: list[tuple[MatchRule, Callable[[Message], None]]] = []
        self._inbox: queue.Queue = queue.Queue(QUEUE_SIZE)
        self._closed = False
        self._calls = threading.Condition()  # guards _in_flight: calls waiting for their reply (rule 6)
        self._in_flight = 0
        router.filter(MatchRule(type="method_call"), queue=self._inbox)
        self._thread = threading.Thread(target=self._dispatch, name="facewatch-dbus", daemon=True)
        self._thread.start()

    @property
    def unique_name(self) -> str:
        """Our connection's bus name (":1.42")."""
        return self.router.unique_name

    # ------------------------------------------------------------------------------------------ serving

    def export(self, path: str, interfaces: list[Interface]) -> None:
        """Serve these interfaces at an object path (Properties and Introspectable come with them, rule 2)."""
        self.objects[path] = {i.name: i for i in interfaces}

    def emit(self, path: str, interface: str, member: str, sig: str | None = None, body: tuple = ()) -> None:
        """Send a signal from one of our objects; never waits."""
        self._send(new_signal(DBusAddress(path, interface=interface), member, sig, body))

    def subscribe(self, rule: MatchRule, handler: Callable[[Message], None]) -> None:
        """Have the bus route signals matching `rule` to us, and call handler(message) on the dispatcher thread."""
        self.call_bus("AddMatch", rule)
        self._handlers.append((rule, handler))
        self.router.filter(rule, queue=self._inbox)

    # ------------------------------------------------------------------------------------------ calling

    def call(self, bus_name: str, path: str, interface: str, member: str, sig: str | None = None,
             body: tuple = (), timeout: float = CALL_TIMEOUT_S) -> tuple:
        """Call another program's method and return its reply body; BusError when it fails or times out."""
        message = new_method_call(DBusAddress(path, bus_name, interface), member, sig, body)
        return self._wait(message, timeout, f"{interface}.{member} on {bus_name}")

    def call_bus(self, member: str, *args: Any) -> tuple:
        """Call a method of the bus daemon itself (RequestName, NameHasOwner, AddMatch...)."""
        return self._wait(getattr(message_bus, member)(*args), CALL_TIMEOUT_S, member)

    def _wait(self, message: Message, timeout: float, what: str) -> tuple:
        with self._calls:
            if self._closed:
                raise BusError(f"{what} failed: the connection is closed")
            self._in_flight += 1
        try:
            return unwrap_msg(self.router.send_and_get_reply(message, timeout=timeout))
        except DBusErrorResponse as exc:
            raise BusError(f"{what} failed: {exc.name}: {' '.join(map(str, exc.data))}") from None
        except (OSError, TimeoutError, RouterClosed) as exc:
            raise BusError(f"{what} failed: {type(exc).__name__}: {exc}") from None
        finally:
            with self._calls:
                self._in_flight -= 1
                self._calls.notify_all()

    def _send(self, message: Message) -> None:
        try:
            self.router.send(message)
        except OSError as exc:  # the bus went away (session ending): nothing left to tell
            log.debug("cannot send on the session bus: %s", exc)

    # ------------------------------------------------------------------------------------------ dispatch

    def close(self) -> None:
        """Stop dispatching and close the connection; a second close does nothing."""
        with self._calls:
            if self._closed:
                return
            self._closed = True
            self._calls.wait_for(lambda: self._in_flight == 0, CALL_TIMEOUT_S)  # rule 6
        self._inbox.put(_STOP)
        if threading.current_thread() is not self._thread:  # a handler may be what closes us
            self._thread.join(CALL_TIMEOUT_S)
        self.router.close()
        self.router.conn.close()

    def _dispatch(self) -> None:
        while (message := self._inbox.get()) is not _STOP:
            if message.header.message_type is MessageType.method_call:
                self._answer(message)
                continue
            for rule, handler in self._handlers:
                if rule.matches(message):
                    try:
                        handler(message)
                    except Exception as exc:  # rule 3
                        log.warning("D-Bus signal handler failed: %s: %s", type(exc).__name__, exc)

    def _answer(self, message: Message) -> None:
        fields = message.header.fields
        try:
            sig, body = self._handle(fields.get(HeaderFields.path), fields.get(HeaderFields.interface),
                                     fields.get(HeaderFields.member), message.body)
            reply = new_method_return(message, sig, body)
        except _CallError as exc:
            reply = new_error(message, exc.name, "s", (exc.text,))
        except Exception as exc:  # rule 3
            log.warning("D-Bus call %s failed: %s: %s", fields.get(HeaderFields.member), type(exc).__name__, exc)
            reply = new_error(message, "org.freedesktop.DBus.Error.Failed", "s", (f"{type(exc).__name__}: {exc}",))
        if not message.header.flags & MessageFlag.no_reply_expected:  # rule 4
            self._send(reply)

    def _handle(self, path: str, interface: str | None, member: str, args: tuple) -> tuple[str | None, tuple]:
        """The reply (signature, body) for a call; _CallError names what is unknown."""
        interfaces = self.objects.get(path)
        if interface == INTROSPECTABLE and member == "Introspect":
            children = sorted({p[len(path):].strip("/").split("/")[0] for p in self.objects
                               if p.startswith(path.rstrip("/") + "/")})
            return "s", (introspection_xml(list((interfaces or {}).values()), children),)
        if interfaces is None:
            raise _CallError("org.freedesktop.DBus.Error.UnknownObject", f"no object at {path}")
        if interface == PROPERTIES:
            return self._properties(interfaces, member, args)
        for iface in ([interfaces[interface]] if interface in interfaces else
                      [] if interface else list(interfaces.values())):
            if member in iface.methods:
                method = iface.methods[member]
                return method.out_sig or None, tuple(method.call(*args))
        raise _CallError("org.freedesktop.DBus.Error.UnknownMethod", f"no method {interface}.{member} at {path}")

    @staticmethod
    def _properties(interfaces: dict[str, Interface], member: str, args: tuple) -> tuple[str, tuple]:
        def iface(name: str) -> Interface:
            if name not in interfaces:
                raise _CallError("org.freedesktop.DBus.Error.UnknownInterface", f"no interface {name}")
            return interfaces[name]

        if member == "GetAll":
            props = iface(args[0]).properties
            return "a{sv}", ({name: (sig, get()) for name, (sig, get) in props.items()},)
        if member == "Get":
            props = iface(args[0]).properties
            if args[1] not in props:
                raise _CallError("org.freedesktop.DBus.Error.UnknownProperty", f"no property {args[1]}")
            sig, get = props[args[1]]
            return "v", ((sig, get()),)
        if member == "Set":
            raise _CallError("org.freedesktop.DBus.Error.PropertyReadOnly", "every property here is read-only")
        raise _CallError("org.freedesktop.DBus.Error.UnknownMethod", f"no method {PROPERTIES}.{member}")


class _CallError(Exception):
    """A D-Bus error reply: its error name and text."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(text)
        self.name, self.text = name, text


class _Connection(DBusConnection):
    """jeepney's threaded connection, except that a hang-up ends its receiver thread quietly (rule 5)."""

    def receive(self, *, timeout: float | None = None) -> Message:
        try:
            return super().receive(timeout=timeout)
        except OSError as exc:  # ConnectionResetError, end of stream
            log.warning("lost the session bus (%s); the tray icon is gone until facewatch restarts", exc)
            raise ReceiveStopped(str(exc)) from None


def session_bus_address() -> str | None:
    """DBUS_SESSION_BUS_ADDRESS, else the systemd user bus socket ($XDG_RUNTIME_DIR/bus) when there is one."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not address and runtime and stat.S_ISSOCK(_mode(os.path.join(runtime, "bus"))):
        address = f"unix:path={os.path.join(runtime, 'bus')}"
    return address or None


def _mode(path: str) -> int:
    try:
        return os.stat(path).st_mode
    except OSError:
        return 0


def connect_session_bus() -> Service:
    """A Service on the user's session bus; BusError (one line) when there is none or it refuses us."""
    address = session_bus_address()
    if address is None:
        raise BusError("no session bus (DBUS_SESSION_BUS_ADDRESS is not set, no $XDG_RUNTIME_DIR/bus)")
    try:
        conn = _Connection(prep_socket(get_bus(address), timeout=AUTH_TIMEOUT_S))
        router = DBusRouter(conn)
        conn.unique_name = unwrap_msg(router.send_and_get_reply(message_bus.Hello(), timeout=CALL_TIMEOUT_S))[0]
        return Service(router)
    except (OSError, ValueError, TimeoutError, StopIteration) as exc:
        # ValueError: jeepney's AuthenticationError or a malformed address; StopIteration: no unix: address in it
        raise BusError(f"cannot connect to the session bus: {type(exc).__name__}: {exc}") from None
