"""Locks against a real xscreensaver under Xvfb: confirmed by the locker's own state, "already locked" is success,
and the daemon never takes a timer for an unlock while the locker says locked."""

from __future__ import annotations

import json
import threading
import time

import pytest
from helpers.desktop import wait_for
from helpers.fakes import FrameList
from helpers.locking import OnePerson, StrangerFaces, start_xscreensaver, start_xvfb

from facewatch.actions.lock import find_locker
from facewatch.actions.notify import LogNotifier
from facewatch.config import Policy
from facewatch.daemon import Daemon, Loop
from facewatch.events import EventLog
from facewatch.policy import LockPolicy, PolicyRunner
from facewatch.tracking.tracks import Tracker
from facewatch.tracking.trigger import CountTrigger


@pytest.fixture
def xscreensaver(tmp_path):
    server, display = start_xvfb()
    saver = None
    try:
        saver = start_xscreensaver(display, tmp_path / "xss-home")
        yield saver
    finally:
        if saver is not None:
            saver.stop()
        server.terminate()
        server.wait(10)


def test_a_real_lock_is_confirmed_by_xscreensaver_and_a_second_is_already_locked(xscreensaver):
    locker = find_locker(platform="linux", env=xscreensaver.env)
    assert "non-blanked" in xscreensaver.time() and locker.is_locked() is False
    assert locker.can_lock_now() == (True, "xscreensaver-command -lock (xscreensaver-command -time answers now)")
    started = time.monotonic()
    result = locker.lock("test stranger")
    print(f"locked and confirmed in {(time.monotonic() - started) * 1000:.0f} ms")
    assert (result.ok, result.method, result.confirmed) == (True, "xscreensaver-command -lock", True)
    assert "screen locked since" in xscreensaver.time() and locker.is_locked() is True
    again = locker.lock("test stranger again")  # xscreensaver-command exits 255: "already locked"
    assert (again.ok, again.method, again.confirmed) == (True, "already locked", True)


class LiveFrames(FrameList):
    """Blank frames forever at 50 fps, released and reopened like a camera (the lock frees it)."""

    def __init__(self) -> None:
        super().__init__(10 ** 9, 50.0)
        self.state = "running"

    def read(self, timeout):
        time.sleep(0.02)
        return super().read(timeout)

    def release(self):
        self.state = "released"

    def reopen(self):
        self.state = "running"


def test_no_false_unlocked_while_xscreensaver_says_locked(xscreensaver, tmp_path):
    """The issue's case: logged "unlocked" 10 s after a lock while the screen was still locked."""
    policy = Policy(unknown_seconds=0.0, away_seconds=0, onlooker="notify", grace_seconds=0.5, camera_lost="notify",
                    camera_in_use="notify", camera_in_use_idle_s=60)
    events = EventLog(tmp_path / "events.jsonl")
    locker = find_locker(platform="linux", env=xscreensaver.env)
    source = LiveFrames()
    loop = Loop(source=source, person=OnePerson(), faces=StrangerFaces(), gallery=None, matcher=None,
                trigger=CountTrigger(0.0, 0.0), tracker=Tracker(0.3, 0.2, 2.0), events=events, fps=50, active_fps=50,
                policy=PolicyRunner(LockPolicy(policy), locker, LogNotifier("test"), events), locked_wait_s=0.5)
    daemon = Daemon(loop)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: daemon.state.status == "locked", 10.0, what="the stranger lock")
        lock = daemon.state.last_event
        assert lock["event"] == "lock" and lock["confirmed"] is True and lock["method"] == "xscreensaver-command -lock"
        time.sleep(4 * 0.5 + 2.5)  # well past locked_wait_s and a lock-state read
        assert daemon.state.status == "locked" and source.state == "released"
        assert "screen locked since" in xscreensaver.time()
        xscreensaver.restart()  # unlocked: a fresh xscreensaver says "non-blanked"
        wait_for(lambda: daemon.state.status != "locked", timeout=10, what="the unlock")
        unlocked = next(e for e in _events(tmp_path) if e["event"] == "unlocked")
        assert unlocked["how"] == "the locker says unlocked"
    finally:
        daemon.stop()
        thread.join(10)


def _events(tmp_path):
    return [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
