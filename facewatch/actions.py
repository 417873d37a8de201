"""What facewatch does to the desktop: lock the screen and notify, per OS, plus a dry-run recorder.

Every OS hook is reached through injectable `platform`, `env`, `which`, `run` (and `native` for ctypes), so
tests can play any OS or desktop without running anything. Commands are argument lists (never a shell
string) and run with a timeout; a lock method that fails hands over to the next one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from facewatch.paths import open_private_append

log = logging.getLogger(__name__)

APP = "facewatch"
# Upper bound on one lock/notify command; a hung D-Bus call must not stall the daemon.
COMMAND_TIMEOUT_S = 5.0
# How long a desktop notification stays up, in milliseconds (D-Bus Notify's expire_timeout).
NOTIFICATION_MS = 10_000

Which = Callable[[str], "str | None"]
Run = Callable[..., subprocess.CompletedProcess]

# D-Bus screensaver services that implement Lock: (bus name, object path, interface), tried in this order.
SCREENSAVERS: tuple[tuple[str, str, str], ...] = (
    ("org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver"),
    ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"),
    ("org.kde.screensaver", "/ScreenSaver", "org.freedesktop.ScreenSaver"),
)

# macOS: the private login.framework call that Chromium and Hammerspoon lock the screen with. dlopen finds
# it in the dyld shared cache, so the file need not exist on disk.
MAC_LOGIN_FRAMEWORK = "/System/Library/PrivateFrameworks/login.framework/Versions/Current/login"
# macOS: the Ctrl-Cmd-Q "Lock Screen" shortcut, typed by System Events.
MAC_LOCK_KEYSTROKE = 'tell application "System Events" to keystroke "q" using {control down, command down}'

# Only the freedesktop branch can come up empty: Windows and macOS always have a native call to try.
NO_LOCKER_HINT = (
    "install/enable one of: loginctl (systemd-logind; run facewatch inside your desktop session), "
    "a screensaver on the D-Bus session bus (GNOME, KDE, xscreensaver, ...) with gdbus (libglib2.0-bin) "
    "or dbus-send (dbus), or xdg-screensaver (xdg-utils, X11 only)"
)


@dataclass(frozen=True)
class LockResult:
    """The outcome of one lock request: whether it locked, by which method, and why not when it did not."""

    ok: bool
    method: str
    detail: str = ""


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


class Notifier(Protocol):
    """Shows a desktop notification (or logs it where the OS offers none)."""

    def notify(self, title: str, body: str) -> None:
        """Show `title`/`body` to the user; never raises."""
        ...


@dataclass(frozen=True)
class Outcome:
    """What one external command did: None error means exit status 0."""

    error: str | None
    output: str = ""


class CommandRunner:
    """Runs argument-list commands with a timeout and turns every way they can fail into an error string."""

    def __init__(self, run: Run, env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT_S) -> None:
        self._run = run
        self._env = env
        self._timeout = timeout

    def __call__(self, command: Sequence[str]) -> Outcome:
        """Run `command` (no shell) and return its stdout, or why it failed (exit status, timeout, OSError)."""
        try:
            proc = self._run(
                list(command),
                capture_output=True,
                text=True,
                timeout=self._timeout,
                env=dict(self._env),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(f"timed out after {self._timeout:g} s")
        except OSError as exc:
            return Outcome(f"could not start: {exc}")
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout or "").strip()
            return Outcome(f"exit status {proc.returncode}" + (f": {said}" if said else ""))
        return Outcome(None, proc.stdout or "")


@dataclass(frozen=True)
class LockMethod:
    """One way to lock: a name for logs and doctor, and an attempt that returns None or why it failed."""

    name: str
    attempt: Callable[[], "str | None"]


class ChainLocker:
    """Tries its lock methods in order until one succeeds, so a broken method falls through to the next."""

    def __init__(self, methods: Sequence[LockMethod], hint: str,
                 probe: Callable[[], "bool | None"] = lambda: None) -> None:
        self.methods = tuple(methods)
        self._hint = hint
        self._probe = probe

    def is_locked(self) -> bool | None:
        """Whether the session is locked now, or None where the OS does not say (the daemon then waits a while)."""
        return self._probe()

    def lock(self, reason: str) -> LockResult:
        """Lock with the first method that works; log every failure; never raise."""
        if not self.methods:
            detail = f"no screen-lock method found: {self._hint}"
            log.error("cannot lock the screen (%s): %s", reason, detail)
            return LockResult(False, "none", detail)
        failures = []
        for method in self.methods:
            error = method.attempt()
            if error is None:
                log.info("screen locked by %s (%s)", method.name, reason)
                return LockResult(True, method.name)
            log.warning("screen lock by %s failed: %s", method.name, error)
            failures.append(f"{method.name}: {error}")
        detail = "every screen-lock method failed: " + "; ".join(failures)
        log.error("cannot lock the screen (%s): %s", reason, detail)
        return LockResult(False, "none", detail)

    @property
    def available(self) -> bool:
        """True when at least one lock method was found (it may still fail when called)."""
        return bool(self.methods)

    def describe(self) -> str:
        """The methods in the order they are tried, or what to install when there is none."""
        if not self.methods:
            return f"no screen-lock method found: {self._hint}"
        return " -> ".join(method.name for method in self.methods)


def command_method(name: str, runner: CommandRunner, command: Sequence[str]) -> LockMethod:
    """A lock method that runs one command and succeeds when it exits 0."""
    return LockMethod(name, lambda: runner(command).error)


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

    return LockMethod("loginctl lock-session", attempt)


def _logind_locked_probe(loginctl: str | None, runner: CommandRunner, env: Mapping[str, str]):
    """A probe reading logind's LockedHint of our session (set by GNOME, KDE and most lockers), or None."""
    session = env.get("XDG_SESSION_ID", "")
    if not loginctl or not session:
        return lambda: None

    def probe() -> bool | None:
        out = runner([loginctl, "show-session", session, "--property=LockedHint", "--value"])
        return None if out.error else out.output.strip() == "yes"

    return probe


def _dbus_lock_command(tool: str, path: str, dest: str, obj: str, iface: str) -> list[str]:
    """The command that calls `<iface>.Lock` on `dest` at `obj` on the session bus with gdbus or dbus-send."""
    if tool == "gdbus":
        return [path, "call", "--session", "--dest", dest, "--object-path", obj, "--method", f"{iface}.Lock"]
    # --print-reply makes dbus-send wait for the answer, so an error reply gives a non-zero exit status.
    return [path, "--session", "--print-reply", f"--dest={dest}", obj, f"{iface}.Lock"]


def _freedesktop_methods(env: Mapping[str, str], which: Which, runner: CommandRunner) -> list[LockMethod]:
    """Linux/BSD desktops: loginctl, then the D-Bus screensavers, then xdg-screensaver on X11."""
    methods = []
    loginctl = which("loginctl")
    if loginctl:
        methods.append(_loginctl_method(loginctl, runner, env))
    # One D-Bus client is enough: gdbus if present, else dbus-send.
    tool = next((name for name in ("gdbus", "dbus-send") if which(name)), None)
    if tool:
        path = which(tool)
        for dest, obj, iface in SCREENSAVERS:
            command = _dbus_lock_command(tool, path, dest, obj, iface)
            methods.append(command_method(f"{tool} {dest} Lock", runner, command))
    xdg = which("xdg-screensaver")
    # xdg-screensaver drives X11 screensavers only; under Wayland it would report success and do nothing.
    if xdg and env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
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
) -> ChainLocker:
    """Find this machine's screen-lock methods (by OS, desktop and installed tools), best first.

    `native` stands in for the ctypes module (tests pass a fake); nothing is run until `lock` is called.
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
        return ChainLocker(methods, NO_LOCKER_HINT, _logind_locked_probe(which("loginctl"), runner, env))
    return ChainLocker(methods, NO_LOCKER_HINT)


def _backslash_quoted(text: str, quote: str) -> str:
    """`text` between `quote`s, with backslash, the quote, newline, CR and tab backslash-escaped.

    GVariant text format and AppleScript both read string literals with these C-style escapes.
    """
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"{quote}{escaped}{quote}"


def gvariant_string(text: str) -> str:
    """Quote `text` as a GVariant text-format string literal, the form gdbus parses its call arguments in."""
    return _backslash_quoted(text, "'")


def notify_send_command(path: str, title: str, body: str) -> list[str]:
    """notify-send; `--` stops a title starting with '-' from being read as an option."""
    return [path, f"--app-name={APP}", "--", title, body]


def gdbus_notify_command(path: str, title: str, body: str) -> list[str]:
    """org.freedesktop.Notifications.Notify through gdbus, every argument typed so no introspection is needed."""
    return [
        path, "call", "--session",
        "--dest", "org.freedesktop.Notifications",
        "--object-path", "/org/freedesktop/Notifications",
        "--method", "org.freedesktop.Notifications.Notify",
        gvariant_string(APP), "uint32 0", gvariant_string(""), gvariant_string(title), gvariant_string(body),
        "@as []", "@a{sv} {}", f"int32 {NOTIFICATION_MS}",
    ]


def applescript_string(text: str) -> str:
    """Quote `text` as an AppleScript string literal, so no text can end the string and run as script."""
    return _backslash_quoted(text, '"')


def osascript_notify_command(path: str, title: str, body: str) -> list[str]:
    """`display notification` with title and body as escaped AppleScript literals."""
    return [path, "-e", f"display notification {applescript_string(body)} with title {applescript_string(title)}"]


class CommandNotifier:
    """Shows notifications by running a command; a failing command is logged once, then quietly."""

    def __init__(self, name: str, runner: CommandRunner, build: Callable[[str, str], list[str]]) -> None:
        self.name = name
        self._runner = runner
        self._build = build
        self._warned = False

    def notify(self, title: str, body: str) -> None:
        """Run the notification command; log a failure (once at warning level) instead of raising."""
        error = self._runner(self._build(title, body)).error
        if error:
            log.log(logging.DEBUG if self._warned else logging.WARNING, "notification via %s failed: %s",
                    self.name, error)
            self._warned = True


class LogNotifier:
    """Where no desktop notifier exists: says why once, then logs each notification."""

    def __init__(self, why: str) -> None:
        self.name = f"log only ({why})"
        self._why = why
        self._warned = False

    def notify(self, title: str, body: str) -> None:
        """Log the notification; the first call also logs why there is no desktop notification."""
        if not self._warned:
            log.warning("no desktop notifications: %s; notifications go to the log", self._why)
            self._warned = True
        log.info("notification: %s: %s", title, body)


def find_notifier(
    platform: str = sys.platform,
    env: Mapping[str, str] = os.environ,
    which: Which = shutil.which,
    run: Run = subprocess.run,
) -> CommandNotifier | LogNotifier:
    """Pick the desktop notifier: notify-send or gdbus (Linux/BSD), osascript (macOS), the log (Windows)."""
    runner = CommandRunner(run, env)
    if platform == "win32":
        return LogNotifier("Windows toast notifications are not implemented")
    if platform == "darwin":
        candidates = (("osascript", osascript_notify_command),)
    else:
        candidates = (("notify-send", notify_send_command), ("gdbus", gdbus_notify_command))
    for tool, build in candidates:
        path = which(tool)
        if path:
            return CommandNotifier(tool, runner, lambda title, body, p=path, b=build: b(p, title, body))
    return LogNotifier(f"none of {', '.join(tool for tool, _ in candidates)} is installed")


@dataclass(frozen=True)
class Recorded:
    """One action the dry-run recorder received: when (epoch s), what ("lock" or "notify"), and why."""

    time: float
    action: str
    reason: str


class DryRunRecorder:
    """A Locker and Notifier that records requests instead of acting: for tests and `facewatch run --no-lock`.

    With `path`, each entry is also appended as one JSON line to a file created 0600 (it names people).
    """

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.entries: list[Recorded] = []
        self._clock = clock

    def _record(self, action: str, reason: str) -> None:
        entry = Recorded(self._clock(), action, reason)
        self.entries.append(entry)
        if self.path is not None:
            with open_private_append(self.path) as f:
                f.write(json.dumps(asdict(entry)) + "\n")

    @property
    def available(self) -> bool:
        """Always: recording cannot be missing."""
        return True

    def is_locked(self) -> bool:
        """Never: the recorder does not lock, so the daemon goes on watching after a recorded lock."""
        return False

    def lock(self, reason: str) -> LockResult:
        """Record a lock request; the screen stays unlocked."""
        self._record("lock", reason)
        return LockResult(True, "dry-run", "recorded; the screen was not locked")

    def notify(self, title: str, body: str) -> None:
        """Record a notification as "title: body"."""
        self._record("notify", f"{title}: {body}")

    def describe(self) -> str:
        """Say that nothing is locked, and where the record goes."""
        where = f", recorded to {self.path}" if self.path is not None else ""
        return f"dry run: lock requests are recorded, the screen is not locked{where}"
