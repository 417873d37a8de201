"""The run console: a status line rewritten in place on a TTY, plain lines otherwise, every decision on its own."""

from __future__ import annotations

import io
import logging

from facewatch.daemon import State
from facewatch.events import EventLog
from facewatch.ui.console import Console, decision_line, quiet_native_logs, status_line


def test_decisions_are_printed_as_written_including_dry_run_locks() -> None:
    out = io.StringIO()
    state = State(status="watching", people=1, identities=("unknown",), frames=9, face_passes=1)
    console = Console(lambda: state, out, tty=False)
    events = EventLog(None)
    events.listeners.append(console.on_event)
    events.write("face_pass", reason="count")  # not a decision: status line only
    events.write("lock", reason="unknown face for 0.6 s", ok=True, method="dry-run")
    events.write("camera", state="in use by another app", yield_ms=4.2)
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "LOCK (dry run, not locked): unknown face for 0.6 s",
        "camera: in use by another app (released in 4 ms)",
    ]
    console.refresh()
    assert out.getvalue().splitlines()[-1].endswith("status: watching | 1 in view: unknown | 9 frames, 1 face passes")


def test_tty_status_is_rewritten_in_place_and_cleared_for_decisions_and_logs() -> None:
    out = io.StringIO()
    state = State(status="watching", people=0, frames=3)
    console = Console(lambda: state, out, tty=True)
    console.refresh()
    console.refresh()  # unchanged: nothing written
    assert out.getvalue() == "\r\x1b[K" + status_line(state)
    console.on_event({"event": "lock", "ok": False, "reason": "owner away", "detail": "no method", "time": 0})
    assert out.getvalue().endswith("LOCK FAILED: owner away: no method\n" + status_line(state))
    record = logging.LogRecord("x", logging.INFO, "f", 1, "hello", None, None)
    assert console.filter(record) and out.getvalue().endswith("\r\x1b[K")
    console.close()
    assert out.getvalue().endswith(status_line(state) + "\n")


def test_lock_lines_say_whether_the_locker_confirmed() -> None:
    assert decision_line({"event": "lock", "ok": True, "method": "xscreensaver-command -lock", "confirmed": True,
                          "reason": "r"}) == "LOCKED by xscreensaver-command -lock (confirmed): r"
    assert decision_line({"event": "count"}) is None


def test_noise_is_silenced_unless_verbose_and_user_settings_win() -> None:
    env = {"QT_LOGGING_RULES": "mine"}
    quiet_native_logs(env)
    assert env["OPENCV_LOG_LEVEL"] == "OFF" and env["OPENCV_FFMPEG_LOGLEVEL"] == "-8"
    assert env["QT_LOGGING_RULES"] == "mine"
    verbose: dict[str, str] = {}
    quiet_native_logs(verbose, verbose=True)
    assert verbose == {}
