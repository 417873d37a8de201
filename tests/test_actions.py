"""Screen lock, notifications and the dry-run recorder, with every OS and desktop played by fakes.

The fakes answer `which` from a set of installed tools and record each command `run` receives, so the
tests assert the exact commands tried and their order. Two tests also drive the real gdbus and dbus-send
against a private D-Bus session bus and read the messages they sent off the bus.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest

from facewatch.actions.dryrun import DryRunRecorder, Recorded
from facewatch.actions.lock import (
    MAC_LOGIN_FRAMEWORK,
    NO_LOCKER_HINT,
    LockResult,
    find_locker,
)
from facewatch.actions.notify import find_notifier
from facewatch.actions.runner import applescript_string, gvariant_string

LINUX_ENV = {"XDG_SESSION_ID": "7", "DISPLAY": ":0"}
GDBUS_LOCKS = [
    ["/usr/bin/gdbus", "call", "--session", "--dest", "org.freedesktop.ScreenSaver",
     "--object-path", "/ScreenSaver", "--method", "org.freedesktop.ScreenSaver.Lock"],
    ["/usr/bin/gdbus", "call", "--session", "--dest", "org.gnome.ScreenSaver",
     "--object-path", "/org/gnome/ScreenSaver", "--method", "org.gnome.ScreenSaver.Lock"],
    ["/usr/bin/gdbus", "call", "--session", "--dest", "org.kde.screensaver",
     "--object-path", "/ScreenSaver", "--method", "org.freedesktop.ScreenSaver.Lock"],
]
FAIL = subprocess.CompletedProcess([], 1, "", "Error: no such service\n")


class FakeOS:
    """Plays an OS: `which` knows the tools in `installed`; `run` records commands, answers from `answers`.

    An answer is a CompletedProcess or an exception to raise; commands without one exit 0 with no output.
    """

    def __init__(self, installed, answers=None):
        self.installed = set(installed)
        self.answers = {tuple(cmd): answer for cmd, answer in (answers or {}).items()}
        self.commands: list[list[str]] = []
        self.kwargs: list[dict] = []

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.installed else None

    def run(self, command, **kwargs):
        self.commands.append(command)
        self.kwargs.append(kwargs)
        answer = self.answers.get(tuple(command), subprocess.CompletedProcess(command, 0, "", ""))
        if isinstance(answer, BaseException):
            raise answer
        return answer


def linux_locker(fake, env=LINUX_ENV):
    return find_locker(platform="linux", env=env, which=fake.which, run=fake.run, native=SimpleNamespace())


# ---- Linux / BSD desktops ------------------------------------------------------------------------


def test_linux_finds_all_methods_in_order_and_loginctl_locks_first():
    fake = FakeOS({"loginctl", "gdbus", "dbus-send", "xdg-screensaver"})
    locker = linux_locker(fake)
    assert locker.describe() == (
        "loginctl lock-session -> gdbus org.freedesktop.ScreenSaver Lock -> gdbus org.gnome.ScreenSaver Lock"
        " -> gdbus org.kde.screensaver Lock -> xdg-screensaver lock"
    )
    assert locker.available
    assert fake.commands == []  # finding runs nothing
    assert locker.lock("stranger") == LockResult(True, "loginctl lock-session")
    assert fake.commands == [["/usr/bin/loginctl", "lock-session", "7"]]
    assert fake.kwargs == [
        {"capture_output": True, "text": True, "timeout": 5.0, "env": LINUX_ENV, "check": False}
    ]


def test_failing_loginctl_falls_through_to_dbus():
    fake = FakeOS({"loginctl", "gdbus"}, {("/usr/bin/loginctl", "lock-session", "7"): FAIL})
    result = linux_locker(fake).lock("stranger")
    assert result == LockResult(True, "gdbus org.freedesktop.ScreenSaver Lock")
    assert fake.commands == [["/usr/bin/loginctl", "lock-session", "7"], GDBUS_LOCKS[0]]


def test_every_method_failing_is_tried_in_order_and_reported(caplog):
    answers = {
        ("/usr/bin/loginctl", "lock-session", "7"): FAIL,
        tuple(GDBUS_LOCKS[0]): subprocess.TimeoutExpired(GDBUS_LOCKS[0], 5.0),
        tuple(GDBUS_LOCKS[1]): FAIL,
        tuple(GDBUS_LOCKS[2]): subprocess.CompletedProcess([], 4, "", ""),
        ("/usr/bin/xdg-screensaver", "lock"): FileNotFoundError(2, "No such file or directory"),
    }
    fake = FakeOS({"loginctl", "gdbus", "xdg-screensaver"}, answers)
    with caplog.at_level(logging.WARNING, logger="facewatch.actions"):
        result = linux_locker(fake).lock("stranger")
    assert fake.commands == [["/usr/bin/loginctl", "lock-session", "7"], *GDBUS_LOCKS,
                             ["/usr/bin/xdg-screensaver", "lock"]]
    assert result == LockResult(False, "none", (
        "every screen-lock method failed: "
        "loginctl lock-session: exit status 1: Error: no such service; "
        "gdbus org.freedesktop.ScreenSaver Lock: timed out after 5 s; "
        "gdbus org.gnome.ScreenSaver Lock: exit status 1: Error: no such service; "
        "gdbus org.kde.screensaver Lock: exit status 4; "
        "xdg-screensaver lock: could not start: [Errno 2] No such file or directory"
    ))
    assert [r.levelname for r in caplog.records] == ["WARNING"] * 5 + ["ERROR"]


def test_dbus_send_is_used_when_gdbus_is_missing():
    fake = FakeOS({"dbus-send"}, {("/usr/bin/dbus-send", "--session", "--print-reply",
                                   "--dest=org.freedesktop.ScreenSaver", "/ScreenSaver",
                                   "org.freedesktop.ScreenSaver.Lock"): FAIL})
    assert linux_locker(fake).lock("stranger") == LockResult(True, "dbus-send org.gnome.ScreenSaver Lock")
    assert fake.commands == [
        ["/usr/bin/dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.ScreenSaver",
         "/ScreenSaver", "org.freedesktop.ScreenSaver.Lock"],
        ["/usr/bin/dbus-send", "--session", "--print-reply", "--dest=org.gnome.ScreenSaver",
         "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver.Lock"],
    ]


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="logind sessions are looked up by POSIX uid")
def test_loginctl_without_session_id_asks_logind_for_the_users_display_session():
    uid = str(os.getuid())
    query = ("/usr/bin/loginctl", "show-user", uid, "--property=Display", "--value")
    fake = FakeOS({"loginctl"}, {query: subprocess.CompletedProcess([], 0, "c2\n", "")})
    assert linux_locker(fake, env={}).lock("stranger") == LockResult(True, "loginctl lock-session")
    assert fake.commands == [list(query), ["/usr/bin/loginctl", "lock-session", "c2"]]

    no_display = FakeOS({"loginctl", "gdbus"}, {query: subprocess.CompletedProcess([], 0, "\n", "")})
    result = linux_locker(no_display, env={}).lock("stranger")
    assert result.method == "gdbus org.freedesktop.ScreenSaver Lock"
    assert no_display.commands == [list(query), GDBUS_LOCKS[0]]


@pytest.mark.parametrize(
    "env, offered",
    [
        ({"DISPLAY": ":0"}, True),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, False),  # XWayland: X11 screensaver is useless
        ({}, False),
    ],
)
def test_xdg_screensaver_is_offered_on_x11_only(env, offered):
    locker = linux_locker(FakeOS({"xdg-screensaver"}), env=env)
    nothing = f"no screen-lock method found: {NO_LOCKER_HINT}"
    assert locker.describe() == ("xdg-screensaver lock" if offered else nothing)


def test_no_method_found_is_a_clear_logged_result_not_a_crash(caplog):
    fake = FakeOS(set())
    locker = linux_locker(fake)
    with caplog.at_level(logging.ERROR, logger="facewatch.actions"):
        result = locker.lock("stranger")
    expected = f"no screen-lock method found: {NO_LOCKER_HINT}"
    assert result == LockResult(False, "none", expected)
    assert locker.describe() == expected
    assert not locker.available
    assert expected.startswith("no screen-lock method found: install/enable one of: loginctl")
    assert caplog.messages == [f"cannot lock the screen (stranger): {expected}"]
    assert fake.commands == []


# ---- Windows and macOS ---------------------------------------------------------------------------


class FakeUser32:
    def __init__(self, returns):
        self.returns = returns
        self.calls = 0

    def LockWorkStation(self):  # noqa: N802 - the Win32 name
        self.calls += 1
        return self.returns


@pytest.mark.parametrize("returns, expected", [
    (1, LockResult(True, "user32.LockWorkStation")),
    (0, LockResult(False, "none", "every screen-lock method failed: user32.LockWorkStation: "
                                  "LockWorkStation returned 0 (is facewatch running on the user's desktop?)")),
])
def test_windows_locks_with_lockworkstation(returns, expected):
    user32 = FakeUser32(returns)
    fake = FakeOS({"loginctl", "gdbus"})  # even if such tools were on PATH, Windows uses user32
    native = SimpleNamespace(windll=SimpleNamespace(user32=user32))
    locker = find_locker(platform="win32", env={}, which=fake.which, run=fake.run, native=native)
    assert locker.describe() == "user32.LockWorkStation"
    assert locker.lock("stranger") == expected
    assert user32.calls == 1
    assert fake.commands == []


class FakeLoginFramework:
    def __init__(self, status):
        self.status = status
        self.calls = 0

    def SACLockScreenImmediate(self):  # noqa: N802 - the macOS name
        self.calls += 1
        return self.status


MAC_KEYSTROKE = ["/usr/bin/osascript", "-e",
                 'tell application "System Events" to keystroke "q" using {control down, command down}']
PMSET = ["/usr/bin/pmset", "displaysleepnow"]


def test_macos_locks_with_the_login_framework_first():
    framework = FakeLoginFramework(0)
    loaded = []
    native = SimpleNamespace(CDLL=lambda path: loaded.append(path) or framework)
    fake = FakeOS({"osascript", "pmset"})
    locker = find_locker(platform="darwin", env={}, which=fake.which, run=fake.run, native=native)
    assert locker.describe() == (
        "SACLockScreenImmediate (login.framework) -> Ctrl-Cmd-Q via System Events"
        " -> pmset displaysleepnow (locks only if a password is required at once)"
    )
    assert locker.lock("stranger") == LockResult(True, "SACLockScreenImmediate (login.framework)")
    assert loaded == [MAC_LOGIN_FRAMEWORK] and framework.calls == 1
    assert fake.commands == []


def test_macos_falls_through_keystroke_then_pmset():
    def missing(path):
        raise OSError(f"dlopen({path}): image not found")

    fake = FakeOS({"osascript", "pmset"}, {tuple(MAC_KEYSTROKE): subprocess.CompletedProcess(
        [], 1, "", "osascript is not allowed to send keystrokes. (1002)\n")})
    locker = find_locker(platform="darwin", env={}, which=fake.which, run=fake.run,
                         native=SimpleNamespace(CDLL=missing))
    result = locker.lock("stranger")
    assert result == LockResult(True, "pmset displaysleepnow (locks only if a password is required at once)")
    assert fake.commands == [MAC_KEYSTROKE, PMSET]


def test_macos_nonzero_status_from_the_login_framework_falls_through():
    framework = FakeLoginFramework(-1)
    fake = FakeOS({"osascript"})
    locker = find_locker(platform="darwin", env={}, which=fake.which, run=fake.run,
                         native=SimpleNamespace(CDLL=lambda path: framework))
    assert locker.lock("stranger") == LockResult(True, "Ctrl-Cmd-Q via System Events")
    assert framework.calls == 1 and fake.commands == [MAC_KEYSTROKE]


# ---- notifications -------------------------------------------------------------------------------

TRICKY_TITLE = "-stranger \"Bob\" isn't 'you'"
TRICKY_BODY = 'a\\b " & do shell script "rm -rf ~" & "\nline 2\t$HOME'


def test_gvariant_and_applescript_literals_escape_quotes_backslashes_and_control_characters():
    assert gvariant_string("") == "''"
    assert gvariant_string(TRICKY_TITLE) == "'-stranger \"Bob\" isn\\'t \\'you\\''"
    assert gvariant_string(TRICKY_BODY) == "'a\\\\b \" & do shell script \"rm -rf ~\" & \"\\nline 2\\t$HOME'"
    assert applescript_string(TRICKY_TITLE) == '"-stranger \\"Bob\\" isn\'t \'you\'"'
    assert applescript_string(TRICKY_BODY) == '"a\\\\b \\" & do shell script \\"rm -rf ~\\" & \\"\\nline 2\\t$HOME"'


def test_linux_notify_send_gets_title_and_body_as_plain_arguments():
    fake = FakeOS({"notify-send", "gdbus"})
    notifier = find_notifier(platform="linux", env={}, which=fake.which, run=fake.run)
    notifier.notify(TRICKY_TITLE, TRICKY_BODY)
    assert fake.commands == [["/usr/bin/notify-send", "--app-name=facewatch", "--", TRICKY_TITLE, TRICKY_BODY]]


def test_linux_without_notify_send_calls_the_notifications_service_with_gdbus():
    fake = FakeOS({"gdbus"})
    find_notifier(platform="linux", env={}, which=fake.which, run=fake.run).notify(TRICKY_TITLE, TRICKY_BODY)
    assert fake.commands == [[
        "/usr/bin/gdbus", "call", "--session", "--dest", "org.freedesktop.Notifications",
        "--object-path", "/org/freedesktop/Notifications", "--method", "org.freedesktop.Notifications.Notify",
        "'facewatch'", "uint32 0", "''", gvariant_string(TRICKY_TITLE), gvariant_string(TRICKY_BODY),
        "@as []", "@a{sv} {}", "int32 10000",
    ]]


def test_macos_notification_is_one_display_notification_statement_with_escaped_text():
    fake = FakeOS({"osascript"})
    find_notifier(platform="darwin", env={}, which=fake.which, run=fake.run).notify(TRICKY_TITLE, TRICKY_BODY)
    assert fake.commands == [[
        "/usr/bin/osascript", "-e",
        'display notification "a\\\\b \\" & do shell script \\"rm -rf ~\\" & \\"\\nline 2\\t$HOME"'
        ' with title "-stranger \\"Bob\\" isn\'t \'you\'"',
    ]]


def test_windows_notifications_only_log_and_say_why_once(caplog):
    fake = FakeOS({"notify-send"})
    notifier = find_notifier(platform="win32", env={}, which=fake.which, run=fake.run)
    with caplog.at_level(logging.INFO, logger="facewatch.actions"):
        notifier.notify("facewatch", "stranger seen")
        notifier.notify("facewatch", "screen locked")
    assert caplog.messages == [
        "no desktop notifications: Windows toast notifications are not implemented; notifications go to the log",
        "notification: facewatch: stranger seen",
        "notification: facewatch: screen locked",
    ]
    assert fake.commands == []


def test_missing_notification_tools_are_logged_once(caplog):
    nothing = FakeOS(set())
    notifier = find_notifier(platform="linux", env={}, which=nothing.which, run=nothing.run)
    with caplog.at_level(logging.WARNING, logger="facewatch.actions"):
        notifier.notify("a", "b")
        notifier.notify("c", "d")
    assert caplog.messages == [
        "no desktop notifications: none of notify-send, gdbus is installed; notifications go to the log"
    ]


def test_a_failing_notifier_warns_once_and_never_raises(caplog):
    fake = FakeOS({"notify-send"}, {
        ("/usr/bin/notify-send", "--app-name=facewatch", "--", "t", "b"): FAIL,
        ("/usr/bin/notify-send", "--app-name=facewatch", "--", "t2", "b2"): subprocess.TimeoutExpired([], 5.0),
    })
    notifier = find_notifier(platform="linux", env={}, which=fake.which, run=fake.run)
    with caplog.at_level(logging.WARNING, logger="facewatch.actions"):
        notifier.notify("t", "b")
        notifier.notify("t2", "b2")
    assert caplog.messages == ["notification via notify-send failed: exit status 1: Error: no such service"]
    assert len(fake.commands) == 2


# ---- dry run -------------------------------------------------------------------------------------


def test_dry_run_recorder_records_exact_entries_in_memory_and_to_a_private_file(tmp_path):
    ticks = iter([1000.0, 1001.5, 1003.25])
    path = tmp_path / "state" / "dry-run.jsonl"
    recorder = DryRunRecorder(path, clock=lambda: next(ticks))
    result = recorder.lock("unknown face for 1.2 s")
    assert result == LockResult(True, "dry-run", "recorded; the screen was not locked")
    recorder.notify("facewatch", "onlooker behind alice")
    recorder.lock("owner away 30 s")
    assert recorder.entries == [
        Recorded(1000.0, "lock", "unknown face for 1.2 s"),
        Recorded(1001.5, "notify", "facewatch: onlooker behind alice"),
        Recorded(1003.25, "lock", "owner away 30 s"),
    ]
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"time": 1000.0, "action": "lock", "reason": "unknown face for 1.2 s"},
        {"time": 1001.5, "action": "notify", "reason": "facewatch: onlooker behind alice"},
        {"time": 1003.25, "action": "lock", "reason": "owner away 30 s"},
    ]
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
    assert recorder.describe() == (
        f"dry run: lock requests are recorded, the screen is not locked, recorded to {path}"
    )


def test_dry_run_recorder_without_a_file_writes_nothing(isolated_home):
    recorder = DryRunRecorder(clock=lambda: 5.0)
    assert recorder.available
    recorder.lock("stranger")
    assert recorder.entries == [Recorded(5.0, "lock", "stranger")]
    assert recorder.describe() == "dry run: lock requests are recorded, the screen is not locked"
    assert list(isolated_home.rglob("*")) == []


# ---- the real gdbus / dbus-send against a private session bus ------------------------------------


@pytest.fixture
def session_bus(tmp_path):
    """A private dbus-daemon and a dbus-monitor logging method calls to a file: (env, read_log)."""
    if not all(shutil.which(tool) for tool in ("dbus-daemon", "dbus-monitor")):
        pytest.skip("dbus-daemon/dbus-monitor not installed")
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    log_path = tmp_path / "monitor.txt"
    monitor = None
    try:
        env = {"DBUS_SESSION_BUS_ADDRESS": daemon.stdout.readline().strip(), "PATH": os.environ.get("PATH", "")}
        with open(log_path, "w") as out:
            monitor = subprocess.Popen(
                ["dbus-monitor", "--session",
                 "type='method_call',member='Lock'", "type='method_call',member='Notify'"],
                stdout=out, stderr=subprocess.DEVNULL, env=env,
            )
        wait_for(lambda: "NameAcquired" in log_path.read_text())  # the monitor is listening
        yield env, log_path.read_text
    finally:
        for proc in (monitor, daemon):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the D-Bus monitor"
        time.sleep(0.05)


def method_calls(log: str) -> list[tuple[str, str, str, str]]:
    return re.findall(r"^method call .*? destination=(\S+) serial=\d+ path=([^;]+); interface=([^;]+); "
                      r"member=(\w+)$", log, flags=re.M)


@pytest.mark.parametrize("tool", ["gdbus", "dbus-send"])
def test_real_dbus_clients_send_the_three_screensaver_lock_calls(session_bus, tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} not installed")
    env, read_log = session_bus
    only_tool = lambda name: shutil.which(name) if name == tool else None  # noqa: E731
    result = find_locker(platform="linux", env=env, which=only_tool).lock("stranger")
    assert not result.ok  # no screensaver owns those names on this private bus
    expected = [
        ("org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver", "Lock"),
        ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver", "Lock"),
        ("org.kde.screensaver", "/ScreenSaver", "org.freedesktop.ScreenSaver", "Lock"),
    ]
    wait_for(lambda: len(method_calls(read_log())) >= 3)
    assert method_calls(read_log()) == expected


def test_real_gdbus_notification_arrives_with_the_exact_strings(session_bus, caplog):
    if not shutil.which("gdbus"):
        pytest.skip("gdbus not installed")
    env, read_log = session_bus
    only_gdbus = lambda name: shutil.which(name) if name == "gdbus" else None  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="facewatch.actions"):
        find_notifier(platform="linux", env=env, which=only_gdbus).notify(TRICKY_TITLE, TRICKY_BODY)
    wait_for(lambda: "int32 10000" in read_log())
    body = read_log().split("member=Notify\n", 1)[1]
    assert body.split("int32 10000", 1)[0] + "int32 10000" == (
        '   string "facewatch"\n'
        "   uint32 0\n"
        '   string ""\n'
        f'   string "{TRICKY_TITLE}"\n'
        f'   string "{TRICKY_BODY}"\n'
        "   array [\n   ]\n"
        "   array [\n   ]\n"
        "   int32 10000"
    )
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith("notification via gdbus failed: exit status")
