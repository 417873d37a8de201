"""Reading the lock state from the lockers themselves (facewatch/actions/lockstate.py rules 1-4), with scripted
command outputs; the real xscreensaver is in test_lock_real.py."""

from __future__ import annotations

from facewatch.actions.lockstate import (
    LockState,
    Probe,
    find_probes,
    parse_get_active,
    parse_query,
    parse_xscreensaver_time,
)


def test_parsers_read_each_lockers_words() -> None:
    assert parse_xscreensaver_time("XScreenSaver 6.06: screen locked since Wed Dec  2 05:05:17 2026\n") is True
    assert parse_xscreensaver_time("XScreenSaver 6.06: screen blanked since Wed Dec  2 05:05:35 2026") is False
    assert parse_xscreensaver_time("XScreenSaver 6.06: screen non-blanked since Wed Dec  2 2026 (hack #1)") is False
    assert parse_xscreensaver_time("xscreensaver-command: no screensaver is running on display :57") is None
    assert parse_get_active("(true,)\n") is True and parse_get_active("(false,)") is False
    assert parse_get_active("method return time=1.2 sender=:1.3\n   boolean true\n") is True
    assert parse_get_active("") is None
    assert parse_query("The screensaver is active\n") is True and parse_query("The screensaver is inactive") is False
    assert parse_query("light-locker is not running") is None


class Scripted:
    """A probe's read that gives `answers` in turn, then repeats the last one; counts its reads."""

    def __init__(self, answers) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def fixed(name: str, *answers) -> Probe:
    return Probe(name, Scripted(answers))


def test_any_locked_probe_means_locked_and_a_foreign_false_is_not_an_unlock() -> None:
    logind, xss = fixed("logind LockedHint", False), fixed("xscreensaver-command -time", True)
    state = LockState([logind, xss])
    assert state.confirm(3, lambda: None, own=["logind LockedHint"]) is True
    assert state.confirmed_by is xss and state.read() is True
    # xscreensaver stops answering (killed): only its own answer could say "unlocked": logind's "no" cannot.
    dead = LockState([fixed("logind LockedHint", False), fixed("xscreensaver-command -time", None)])
    dead.confirmed_by = dead.probes[1]
    assert dead.read() is None


def test_an_unlock_is_read_from_the_probe_that_confirmed_the_lock() -> None:
    xss = fixed("xscreensaver-command -time", True, True, False)
    state = LockState([fixed("org.gnome.ScreenSaver GetActive", None), xss])
    assert state.confirm(1, lambda: None) is True
    assert state.read() is True and state.read() is False


def test_confirmation_polls_until_locked_and_drops_absent_lockers() -> None:
    absent, slow = fixed("org.mate.ScreenSaver GetActive", None), fixed("light-locker-command -q", False, False, True)
    waits = []
    state = LockState([absent, slow])
    assert state.confirm(5, lambda: waits.append(1), own=["light-locker-command -q"]) is True
    assert len(waits) == 2 and absent.read.calls == 1 and slow.read.calls == 3


def test_a_lock_that_did_not_take_is_told_from_one_nobody_can_check() -> None:
    running = LockState([fixed("xscreensaver-command -time", False)])
    assert running.confirm(3, lambda: None, own=["xscreensaver-command -time"]) is False
    assert running.confirm(3, lambda: None, own=["dm-tool lock"]) is None  # not its locker: cannot tell
    assert LockState([]).confirm(3, lambda: None) is None
    assert "policy.grace_seconds" in LockState([]).describe()


class Runner:
    """Scripted CommandRunner: output per program name, an error for anything else."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.commands: list[list[str]] = []

    def __call__(self, command):
        from facewatch.actions.runner import Outcome

        self.commands.append(list(command))
        name = command[0].rsplit("/", 1)[-1]
        if name in self.outputs:
            return Outcome(None, self.outputs[name])
        return Outcome("exit status 1: not running")


def test_probes_found_per_installed_tool() -> None:
    tools = {"loginctl", "gdbus", "xscreensaver-command", "light-locker-command"}
    which = lambda name: f"/usr/bin/{name}" if name in tools else None
    runner = Runner({"xscreensaver-command": "XScreenSaver 6.06: screen locked since now"})
    env = {"XDG_SESSION_ID": "3", "DISPLAY": ":0"}
    names = [p.name for p in find_probes(env, which, runner)]
    assert names == ["logind LockedHint", "org.freedesktop.ScreenSaver GetActive", "org.gnome.ScreenSaver GetActive",
                     "org.mate.ScreenSaver GetActive", "org.cinnamon.ScreenSaver GetActive",
                     "xscreensaver-command -time", "light-locker-command -q"]
    assert LockState(find_probes(env, which, runner)).read() is True
    assert ["/usr/bin/gdbus", "call", "--session", "--dest", "org.gnome.ScreenSaver", "--object-path",
            "/org/gnome/ScreenSaver", "--method", "org.gnome.ScreenSaver.GetActive"] in runner.commands
    assert find_probes({}, which, runner)[0].name == "org.freedesktop.ScreenSaver GetActive"  # no session, no X
