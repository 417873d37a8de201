"""Screen locking per OS: a chain of lock methods, tried in order, each reached through injectable hooks.

Every OS hook is reached through injectable `platform`, `env`, `which`, `run` (and `native` for ctypes), so
tests can play any OS or desktop without running anything; a lock method that fails hands over to the next one.

Rules (Linux/BSD, where the lockers report their state: facewatch/actions/lockstate.py):
1. A lock counts once a locker's own state says locked; a method that exits 0 while its own locker still says
   unlocked did not lock, and the next method is tried. Where no running locker reports its state, the lock
   is taken on the method's word and marked unconfirmed.
2. "Already locked" is success: when every method fails but a locker says the screen is locked, it is.
3. The D-Bus methods are offered only where there is a session bus (DBUS_SESSION_BUS_ADDRESS, or the
   systemd user bus at $XDG_RUNTIME_DIR/bus): without one every call fails, and gdbus might start a bus.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from facewatch.actions.lockstate import LockState, find_probes
from facewatch.actions.runner import CommandRunner, Run, Which

log = logging.getLogger("facewatch.actions")


# D-Bus screensaver services that implement Lock: (bus name, object path, interface, the probe of that
# locker's state), tried in this order. KDE answers GetActive under org.freedesktop.ScreenSaver.
SCREENSAVERS: tuple[tuple[str, str, str, str], ...] = (
    ("org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver",
     "org.freedesktop.ScreenSaver GetActive"),
    ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver", "org.gnome.ScreenSaver GetActive"),
    ("org.kde.screensaver", "/ScreenSaver", "org.freedesktop.ScreenSaver", "org.freedesktop.ScreenSaver GetActive"),
    ("org.mate.ScreenSaver", "/org/mate/ScreenSaver", "org.mate.ScreenSaver", "org.mate.ScreenSaver GetActive"),
)
# Locker tools, tried after D-Bus: (program, its lock arguments, the probes of its state).
LOCK_TOOLS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("xscreensaver-command", ("-lock",), ("xscreensaver-command -time",)),
    ("light-locker-command", ("-l",), ("light-locker-command -q", "org.freedesktop.ScreenSaver GetActive")),
    ("mate-screensaver-command", ("--lock",), ("mate-screensaver-command -q", "org.mate.ScreenSaver GetActive")),
    ("cinnamon-screensaver-command", ("--lock",),
     ("cinnamon-screensaver-command -q", "org.cinnamon.ScreenSaver GetActive")),
    ("dm-tool", ("lock",), ()),  # LightDM switches to its greeter; it reports no lock state of its own
)
# After a lock request, the lockers' state is read this many times, LOCK_CONFIRM_WAIT_S apart (2 s in all).
LOCK_CONFIRM_POLLS = 10
LOCK_CONFIRM_WAIT_S = 0.2

# macOS: the private login.framework call that Chromium and Hammerspoon lock the screen with. dlopen finds
# it in the dyld shared cache, so the file need not exist on disk.
MAC_LOGIN_FRAMEWORK = "/System/Library/PrivateFrameworks/login.framework/Versions/Current/login"
# macOS: the Ctrl-Cmd-Q "Lock Screen" shortcut, typed by System Events.
MAC_LOCK_KEYSTROKE = 'tell application "System Events" to keystroke "q" using {control down, command down}'

# Only the freedesktop branch can come up empty: Windows and macOS always have a native call to try.
NO_LOCKER_HINT = (
    "install/enable one of: loginctl (systemd-logind; run facewatch inside your desktop session), "
    "a screensaver on the D-Bus session bus (GNOME, KDE, MATE, Cinnamon) with gdbus (libglib2.0-bin) "
    "or dbus-send (dbus), xscreensaver, light-locker, dm-tool (LightDM), or xdg-screensaver (xdg-utils, X11 only)"
)


@dataclass(frozen=True)
class LockResult:
    """The outcome of one lock request: whether it locked, by which method, and why not when it did not.

    confirmed: True when a locker's own state said locked, None when nothing could tell (rule 1).
    """

    ok: bool
    method: str
    detail: str = ""
    confirmed: bool | None = None


class Locker(Protocol):
    """Locks the screen; `available` and `describe` say whether and how, for `facewatch doctor`."""

    @property
    def available(self) -> bool:
        """False when no lock method was found at all."""
        ...

    def lock(self, reason: str) -> LockResult:
        """Lock the screen now; never raises, reports failure in the result."""
        ...

    def describe(self) -> str:
        """One line naming how this locker locks."""
        ...

    def is_locked(self) -> bool | None:
        """Whether the session is locked now; None when the OS cannot tell."""
        ...


@dataclass(frozen=True)
class LockMethod:
    """One way to lock: a name for logs and doctor, an attempt that returns None or why it failed, and the
    names of the probes that read this locker's own state (rule 1)."""

    name: str
    attempt: Callable[[], "str | None"]
    probes: tuple[str, ...] = ()


class ChainLocker:
    """Tries its lock methods in order until one locks (rules 1-2), so a broken method falls through to the next."""

    def __init__(self, methods: Sequence[LockMethod], hint: str, state: LockState | None = None,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        """`state` None: an OS (Windows, macOS) whose lock call reports its own failure and whose lock state
        facewatch does not read."""
        self.methods = tuple(methods)
        self._probed = state is not None
        self.state = state or LockState([])
        self._hint = hint
        self._wait = lambda: sleep(LOCK_CONFIRM_WAIT_S)

    def is_locked(self) -> bool | None:
        """Whether the session is locked now, from the lockers' own state; None where none can tell."""
        return self.state.read()

    def lock(self, reason: str) -> LockResult:
        """Lock with the first method that works and is not contradicted by its locker; never raise."""
        if not self.methods:
            detail = f"no screen-lock method found: {self._hint}"
            log.error("cannot lock the screen (%s): %s", reason, detail)
            return LockResult(False, "none", detail)
        failures: list[str] = []
        for method in self.methods:
            error = method.attempt()
            if error is None:
                confirmed = self.state.confirm(LOCK_CONFIRM_POLLS, self._wait, method.probes)
                if confirmed is not False:
                    return self._locked(method.name, reason, failures, confirmed)
                error = f"exited 0 but {' / '.join(method.probes)} still says unlocked"
            log.debug("screen lock by %s failed: %s", method.name, error)
            failures.append(f"{method.name}: {error}")
        if self.state.confirm(1, self._wait):  # rule 2
            assert self.state.confirmed_by is not None  # confirm() returned True, so it set confirmed_by
            probe = self.state.confirmed_by.name
            log.info("screen already locked (%s says so; %s)", probe, reason)
            return LockResult(True, "already locked", f"{probe} says locked", True)
        detail = "every screen-lock method failed: " + "; ".join(failures)
        log.error("cannot lock the screen (%s): %s", reason, detail)
        return LockResult(False, "none", detail)

    def _locked(self, name: str, reason: str, failures: list[str], confirmed: bool | None) -> LockResult:
        """The result of a lock by `name`; the methods that failed before it are logged once, at info level."""
        earlier = f" after {'; '.join(failures)}" if failures else ""
        if confirmed:
            assert self.state.confirmed_by is not None  # confirm() returned True, so it set confirmed_by
            log.info("screen locked by %s, confirmed by %s (%s)%s", name, self.state.confirmed_by.name, reason,
                     earlier)
            return LockResult(True, name, confirmed=True)
        if not self._probed:  # Windows, macOS: the OS call's own status is the answer
            log.info("screen locked by %s (%s)%s", name, reason, earlier)
            return LockResult(True, name)
        log.info("screen lock requested by %s; no running locker reports its state (%s)%s", name, reason, earlier)
        return LockResult(True, name, "not confirmed: no running locker reports its state")

    def can_lock_now(self) -> tuple[bool, str]:
        """For doctor: whether a method's locker is running now (its state probe answers), read once, and which."""
        if not self.methods:
            return False, f"no screen-lock method found: {self._hint}"
        if not self._probed:
            return True, f"{self.methods[0].name} (an OS call, always there; it reports its own failure)"
        answering = {probe.name for probe in self.state.probes if probe.read() is not None}
        for method in self.methods:
            running = [name for name in method.probes if name in answering]
            if method.name == "loginctl lock-session" and "logind LockedHint" in answering:
                running = ["logind LockedHint"]  # a logind session: your desktop must listen for lock requests
            if running:
                return True, f"{method.name} ({', '.join(running)} answers now)"
        names = " -> ".join(method.name for method in self.methods)
        return False, (f"found {names}, but no locker answers now, so none is known to lock: run a screen locker "
                       "(your desktop's, or xscreensaver / light-locker) in this session")

    @property
    def available(self) -> bool:
        """True when at least one lock method was found (it may still fail when called)."""
        return bool(self.methods)

    def describe(self) -> str:
        """The methods in the order they are tried, or what to install when there is none."""
        if not self.methods:
            return f"no screen-lock method found: {self._hint}"
        return " -> ".join(method.name for method in self.methods)


def command_method(name: str, runner: CommandRunner, command: Sequence[str],
                   probes: Sequence[str] = ()) -> LockMethod:
    """A lock method that runs one command and succeeds when it exits 0 (and its locker does not deny it)."""
    return LockMethod(name, lambda: runner(command).error, tuple(probes))


def _loginctl_method(loginctl: str, runner: CommandRunner, env: Mapping[str, str]) -> LockMethod:
    """`loginctl lock-session` on our session: XDG_SESSION_ID, else the user's graphical (Display) session.

    logind only asks the session to lock; it works where the desktop (GNOME, KDE, xss-lock, ...) listens.
    """

    def attempt() -> str | None:
        session = env.get("XDG_SESSION_ID", "")
        if not session:
            # Started outside the session (e.g. a systemd user service): ask logind for the user's display.
            found = runner([loginctl, "show-user", str(os.getuid()), "--property=Display", "--value"])
            if found.error:
                return found.error
            session = found.output.strip()
            if not session:
                return "XDG_SESSION_ID is unset and logind knows no graphical session of this user"
        return runner([loginctl, "lock-session", session]).error

    # Not every locker sets LockedHint, so logind's "no" does not refute this lock: no own probe (rule 1).
    return LockMethod("loginctl lock-session", attempt)


def has_session_bus(env: Mapping[str, str]) -> bool:
    """Rule 3: a D-Bus session bus is named in the environment or sits at the systemd user bus path."""
    runtime = env.get("XDG_RUNTIME_DIR", "")
    return bool(env.get("DBUS_SESSION_BUS_ADDRESS")) or bool(runtime and os.path.exists(os.path.join(runtime, "bus")))


def _dbus_lock_command(tool: str, path: str, dest: str, obj: str, iface: str) -> list[str]:
    """The command that calls `<iface>.Lock` on `dest` at `obj` on the session bus with gdbus or dbus-send."""
    if tool == "gdbus":
        return [path, "call", "--session", "--dest", dest, "--object-path", obj, "--method", f"{iface}.Lock"]
    # --print-reply makes dbus-send wait for the answer, so an error reply gives a non-zero exit status.
    return [path, "--session", "--print-reply", f"--dest={dest}", obj, f"{iface}.Lock"]


def _freedesktop_methods(env: Mapping[str, str], which: Which, runner: CommandRunner) -> list[LockMethod]:
    """Linux/BSD desktops: loginctl, the D-Bus screensavers, the locker tools, then xdg-screensaver on X11."""
    methods = []
    loginctl = which("loginctl")
    if loginctl:
        methods.append(_loginctl_method(loginctl, runner, env))
    # One D-Bus client is enough: gdbus if present, else dbus-send.
    tool = next((name for name in ("gdbus", "dbus-send") if which(name)), None)
    if tool and has_session_bus(env):
        path = which(tool)
        assert path is not None  # `tool` was picked because which() found it
        for dest, obj, iface, probe in SCREENSAVERS:
            command = _dbus_lock_command(tool, path, dest, obj, iface)
            methods.append(command_method(f"{tool} {dest} Lock", runner, command, [probe]))
    x11 = bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")
    for program, arguments, probes in LOCK_TOOLS:
        path = which(program)
        if path and (x11 or program != "xscreensaver-command"):
            methods.append(command_method(" ".join((program, *arguments)), runner, [path, *arguments], probes))
    xdg = which("xdg-screensaver")
    # xdg-screensaver drives X11 screensavers only; under Wayland it would report success and do nothing.
    if xdg and x11:
        methods.append(command_method("xdg-screensaver lock", runner, [xdg, "lock"]))
    return methods


def _windows_methods(native: Any) -> list[LockMethod]:
    """Windows: user32 LockWorkStation, which works from any process on the interactive desktop."""

    def attempt() -> str | None:
        try:
            locked = native.windll.user32.LockWorkStation()
        except (AttributeError, OSError) as exc:
            return f"user32.LockWorkStation unavailable: {exc}"
        # Zero means the request was refused, e.g. from a service not on the interactive desktop.
        return None if locked else "LockWorkStation returned 0 (is facewatch running on the user's desktop?)"

    return [LockMethod("user32.LockWorkStation", attempt)]


def _mac_methods(which: Which, runner: CommandRunner, native: Any) -> list[LockMethod]:
    """macOS, best first. `CGSession -suspend` is gone since Big Sur, so none of these is the old way.

    1. SACLockScreenImmediate: a real lock with no permission prompt, but a private API Apple may change;
       it returns an OSStatus, 0 on success.
    2. Ctrl-Cmd-Q typed by System Events: a real lock, but the app running facewatch (Terminal, Python)
       needs the Accessibility permission (System Settings > Privacy & Security > Accessibility);
       without it osascript exits non-zero and we fall through.
    3. `pmset displaysleepnow`: only sleeps the display; it locks only when "Require password after screen
       saver begins or display is turned off" is set to "Immediately".
    """

    def sac_attempt() -> str | None:
        try:
            status = native.CDLL(MAC_LOGIN_FRAMEWORK).SACLockScreenImmediate()
        except (AttributeError, OSError) as exc:
            return f"login.framework unavailable: {exc}"
        return None if status == 0 else f"SACLockScreenImmediate returned {status}"

    methods = [LockMethod("SACLockScreenImmediate (login.framework)", sac_attempt)]
    osascript = which("osascript")
    if osascript:
        keystroke = [osascript, "-e", MAC_LOCK_KEYSTROKE]
        methods.append(command_method("Ctrl-Cmd-Q via System Events", runner, keystroke))
    pmset = which("pmset")
    if pmset:
        name = "pmset displaysleepnow (locks only if a password is required at once)"
        methods.append(command_method(name, runner, [pmset, "displaysleepnow"]))
    return methods


def find_locker(
    platform: str = sys.platform,
    env: Mapping[str, str] = os.environ,
    which: Which = shutil.which,
    run: Run = subprocess.run,
    native: Any = None,
    sleep: Callable[[float], object] = time.sleep,
) -> ChainLocker:
    """Find this machine's screen-lock methods (by OS, desktop and installed tools), best first.

    `native` stands in for the ctypes module (tests pass a fake); nothing is run until `lock` is called;
    `sleep` paces the reads that confirm a lock.
    """
    runner = CommandRunner(run, env)
    if native is None:
        import ctypes

        native = ctypes
    if platform == "win32":
        methods = _windows_methods(native)
    elif platform == "darwin":
        methods = _mac_methods(which, runner, native)
    else:
        methods = _freedesktop_methods(env, which, runner)
        probes = find_probes(env, which, runner, dbus=has_session_bus(env))
        return ChainLocker(methods, NO_LOCKER_HINT, LockState(probes), sleep)
    return ChainLocker(methods, NO_LOCKER_HINT, sleep=sleep)
