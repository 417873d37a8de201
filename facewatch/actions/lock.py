"""Screen locking per OS: a chain of lock methods, tried in order, each reached through injectable hooks.

Every OS hook is reached through injectable `platform`, `env`, `which`, `run` (and `native` for ctypes), so
tests can play any OS or desktop without running anything; a lock method that fails hands over to the next one.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from facewatch.actions.runner import CommandRunner, Run, Which

log = logging.getLogger("facewatch.actions")


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
