"""Whether the screen is locked now, read from the lockers' own state, so facewatch never guesses an unlock.

Rules:
1. A probe answers True (locked), False (running and not locked) or None (that locker is not running here, or
   the call failed): None is never read as "unlocked".
2. Probes, by locker: logind's LockedHint of our session (set by GNOME, KDE and lockers that report to logind);
   GetActive on the session bus for org.freedesktop.ScreenSaver (KDE, light-locker), org.gnome.ScreenSaver,
   org.mate.ScreenSaver and org.cinnamon.ScreenSaver; `xscreensaver-command -time` ("screen locked since" is
   locked, "blanked"/"non-blanked" is not: xscreensaver blanks without locking when so set); `-q` of
   light-locker-command, mate-screensaver-command and cinnamon-screensaver-command ("is active").
3. LockState: locked when any probe says so (another locker may have done it: loginctl -> xss-lock ->
   xscreensaver). Not locked only when the probe that confirmed our lock now says
   False (or, before any lock, when a probe says False and none says True): one locker's False says nothing of
   another's lock (LockedHint stays "no" under a bare xscreensaver).
4. A probe that answers None is skipped for the rest of a confirmation (its locker is absent), so confirming a
   lock costs one call per running locker per poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from facewatch.actions.runner import CommandRunner, Which

# Session-bus screensavers that answer GetActive: (bus name, object path, interface).
GET_ACTIVE: tuple[tuple[str, str, str], ...] = (
    ("org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver"),
    ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"),
    ("org.mate.ScreenSaver", "/org/mate/ScreenSaver", "org.mate.ScreenSaver"),
    ("org.cinnamon.ScreenSaver", "/org/cinnamon/ScreenSaver", "org.cinnamon.ScreenSaver"),
)
# Locker command-line tools whose -q prints "The screensaver is active" / "... inactive".
QUERY_TOOLS = ("light-locker-command", "mate-screensaver-command", "cinnamon-screensaver-command")


@dataclass(frozen=True)
class Probe:
    """One way to read the lock state (rule 1): a name for logs and doctor, and the read itself."""

    name: str
    read: Callable[[], "bool | None"]


def parse_xscreensaver_time(output: str) -> bool | None:
    """`xscreensaver-command -time`: "screen locked since ..." → True, "(non-)blanked since" → False, else None."""
    if "screen locked" in output:
        return True
    if "blanked since" in output:
        return False
    return None


def parse_get_active(output: str) -> bool | None:
    """GetActive's reply as gdbus prints it ("(true,)") or dbus-send ("boolean true")."""
    words = output.replace("(", " ").replace(")", " ").replace(",", " ").split()
    if "true" in words:
        return True
    if "false" in words:
        return False
    return None


def parse_query(output: str) -> bool | None:
    """`<locker>-command -q`: "The screensaver is active" → True, "... inactive" → False."""
    text = output.lower()
    if "inactive" in text:
        return False
    return True if "is active" in text else None


def _command_probe(name: str, runner: CommandRunner, command: Sequence[str],
                   parse: Callable[[str], "bool | None"]) -> Probe:
    """A probe that runs `command` and parses its output; a failed call is None (rule 1)."""

    def read() -> bool | None:
        out = runner(command)
        return None if out.error else parse(out.output)

    return Probe(name, read)


def get_active_command(tool: str, path: str, dest: str, obj: str, iface: str) -> list[str]:
    """`<iface>.GetActive` on `dest` at `obj` on the session bus, with gdbus or dbus-send."""
    if tool == "gdbus":
        return [path, "call", "--session", "--dest", dest, "--object-path", obj, "--method", f"{iface}.GetActive"]
    return [path, "--session", "--print-reply", f"--dest={dest}", obj, f"{iface}.GetActive"]


def find_probes(env: Mapping[str, str], which: Which, runner: CommandRunner, dbus: bool = True) -> list[Probe]:
    """Every lock-state probe this machine has tools for (rule 2), best first; `dbus` False: no session bus."""
    probes = []
    loginctl, session = which("loginctl"), env.get("XDG_SESSION_ID", "")
    if loginctl and session:
        command = [loginctl, "show-session", session, "--property=LockedHint", "--value"]
        probes.append(_command_probe("logind LockedHint", runner, command, lambda out: out.strip() == "yes"))
    tool = next((name for name in ("gdbus", "dbus-send") if which(name)), None)
    path = which(tool) if tool else None  # `tool` was picked because which() found it
    if tool and path and dbus:
        for dest, obj, iface in GET_ACTIVE:
            command = get_active_command(tool, path, dest, obj, iface)
            probes.append(_command_probe(f"{dest} GetActive", runner, command, parse_get_active))
    xscreensaver = which("xscreensaver-command")
    if xscreensaver and env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        probes.append(_command_probe("xscreensaver-command -time", runner, [xscreensaver, "-time"],
                                     parse_xscreensaver_time))
    for name in QUERY_TOOLS:
        path = which(name)
        if path:
            probes.append(_command_probe(f"{name} -q", runner, [path, "-q"], parse_query))
    return probes


class LockState:
    """The lock state across every probe (rules 3-4); remembers which probe confirmed facewatch's lock."""

    def __init__(self, probes: Sequence[Probe]) -> None:
        self.probes = tuple(probes)
        self.confirmed_by: Probe | None = None

    def read(self) -> bool | None:
        """Locked now? True, False (rule 3), or None when no probe can tell."""
        answers = [(probe, probe.read()) for probe in self.probes]
        if any(answer for _, answer in answers):
            return True
        if self.confirmed_by is not None:
            return next((answer for probe, answer in answers if probe is self.confirmed_by), None)
        return False if any(answer is False for _, answer in answers) else None

    def confirm(self, polls: int, wait: Callable[[], object], own: Sequence[str] = ()) -> bool | None:
        """After a lock request: poll up to `polls` times (`wait()` between) until a probe says locked.

        True: confirmed (`confirmed_by` is set). False: a probe of the locker asked (`own`, by name) is running
        and still says unlocked, so the request did not take. None: nothing could tell. Probes that answer None
        are dropped from later polls (rule 4).
        """
        live, own_said_no = list(self.probes), False
        for attempt in range(polls):
            if attempt:
                wait()
            answered = []
            for probe in live:
                answer = probe.read()
                if answer:
                    self.confirmed_by = probe
                    return True
                if answer is not None:
                    answered.append(probe)
                    own_said_no |= probe.name in own
            live = answered
            if not live:
                break
        return False if own_said_no else None

    def describe(self) -> str:
        """For doctor: which probes exist, or that facewatch can only wait out a timer after a lock."""
        if not self.probes:
            return ("none: after a lock facewatch cannot tell when you unlock, so it reopens the camera after "
                    "policy.grace_seconds")
        return ", ".join(probe.name for probe in self.probes)
