"""Desktop notifications per OS: notify-send or gdbus (Linux/BSD), osascript (macOS), the log elsewhere."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from functools import partial
from typing import Callable, Mapping, Protocol

from facewatch import APP
from facewatch.actions.runner import (
    CommandRunner,
    Run,
    Which,
    applescript_string,
    gvariant_string,
)

log = logging.getLogger("facewatch.actions")

# How long a desktop notification stays up, in milliseconds (D-Bus Notify's expire_timeout).
NOTIFICATION_MS = 10_000


class Notifier(Protocol):
    """Shows a desktop notification (or logs it where the OS offers none)."""

    def notify(self, title: str, body: str) -> None:
        """Show `title`/`body` to the user; never raises."""
        ...


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
        candidates: tuple[tuple[str, Callable[[str, str, str], list[str]]], ...] = (
            ("osascript", osascript_notify_command),)
    else:
        candidates = (("notify-send", notify_send_command), ("gdbus", gdbus_notify_command))
    for tool, build in candidates:
        path = which(tool)
        if path:
            return CommandNotifier(tool, runner, partial(build, path))
    return LogNotifier(f"none of {', '.join(tool for tool, _ in candidates)} is installed")
