"""The camera steps aside: a stand-in device file opened by a second process makes facewatch let go, and a close
gives it back; facewatch's own opens never count (facewatch/system/camera_yield.py rules 1-3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.desktop import wait_for
from helpers.fakes import CountingFaces
from helpers.locking import NodeCapture, OnePerson

from facewatch.actions.dryrun import DryRunRecorder
from facewatch.capture import FrameSource
from facewatch.config import Policy
from facewatch.daemon import Daemon, Loop
from facewatch.events import EventLog
from facewatch.policy import LockPolicy, PolicyRunner
from facewatch.system.camera_yield import CameraYield, camera_device, describe_support, other_holders
from facewatch.tracking.tracks import Tracker
from facewatch.tracking.trigger import CountTrigger

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify and /proc are Linux-only")

# A second program: opens the node, says when it started to (CLOCK_MONOTONIC is one clock for every process),
# holds it until its stdin closes.
OPENER = (
    "import os, sys, time\n"
    "t = time.monotonic()\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "print(t, flush=True)\n"
    "sys.stdin.read()\n"
    "os.close(fd)\n"
)


class Holder:
    """Stands in for facewatch's capture: holds its own descriptor on the node and drops it when told."""

    def __init__(self, node: Path) -> None:
        self.node = node
        self.fd: int | None = os.open(node, os.O_RDONLY)
        self.released_at: float | None = None
        self.changes: list[bool] = []
        self.changed = threading.Event()

    def on_change(self, busy: bool) -> None:
        self.changes.append(busy)
        if busy and self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.released_at = time.monotonic()
        elif not busy:
            self.fd = os.open(self.node, os.O_RDONLY)  # the reopen fires IN_OPEN: it must not count
        self.changed.set()

    def wait(self, seconds: float = 5.0) -> None:
        assert self.changed.wait(seconds), "no yield/resume within 5 s"
        self.changed.clear()


@pytest.fixture
def node(tmp_path: Path) -> Path:
    path = tmp_path / "video0"
    path.write_bytes(b"")
    return path


def _open_elsewhere(node: Path) -> tuple[subprocess.Popen, float]:
    proc = subprocess.Popen([sys.executable, "-c", OPENER, str(node)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, float(proc.stdout.readline())


def test_second_opener_takes_the_camera_and_gives_it_back(node: Path) -> None:
    holder = Holder(node)
    watch = CameraYield(node, holder.on_change, resume_after_s=0.3, recheck_s=0.2)
    try:
        assert other_holders(node) == []  # our own descriptor is not "another app"
        proc, opened_at = _open_elsewhere(node)
        holder.wait()
        assert holder.changes == [True] and watch.busy and watch.holders == [proc.pid]
        latency_ms = (holder.released_at - opened_at) * 1000
        print(f"camera released {latency_ms:.1f} ms after the other app opened it")
        assert holder.fd is None
        proc.stdin.close()
        proc.wait(5)
        holder.wait()
        assert holder.changes == [True, False] and not watch.busy
        time.sleep(0.5)  # our own reopen has fired IN_OPEN by now: it must not flip the state
        assert holder.changes == [True, False]
    finally:
        watch.close()
        if holder.fd is not None:
            os.close(holder.fd)


def test_a_program_that_only_glances_at_the_camera_has_it_back_within_resume_after_s(node: Path) -> None:
    holder = Holder(node)
    watch = CameraYield(node, holder.on_change, resume_after_s=0.3, recheck_s=0.2)
    try:
        subprocess.run([sys.executable, "-c", f"open({str(node)!r}).close()"], check=True)
        # Seen while open (a yield) or already closed (none): either way the camera is ours again soon.
        wait_for(lambda: not watch.busy and holder.fd is not None, timeout=3.0, what="the camera back")
        assert holder.changes in ([], [True, False])
    finally:
        watch.close()
        if holder.fd is not None:
            os.close(holder.fd)


def test_a_brief_close_and_reopen_keeps_the_camera_away(node: Path) -> None:
    """Rule 3: a call app that reopens within resume_after_s keeps the camera."""
    holder = Holder(node)
    watch = CameraYield(node, holder.on_change, resume_after_s=1.0, recheck_s=0.2)
    try:
        first, _ = _open_elsewhere(node)
        holder.wait()
        first.stdin.close()
        first.wait(5)
        second, _ = _open_elsewhere(node)
        time.sleep(1.3)
        assert holder.changes == [True] and watch.busy
        second.stdin.close()
        second.wait(5)
        holder.wait()
        assert holder.changes == [True, False]
    finally:
        watch.close()
        if holder.fd is not None:
            os.close(holder.fd)


def test_device_and_support_by_platform() -> None:
    assert camera_device(2, "linux") == Path("/dev/video2")
    assert camera_device(0, "win32") is None and camera_device("clip.mp4", "linux") is None
    assert "not supported" in describe_support("darwin") and "inotify" in describe_support("linux")


def test_the_daemon_releases_a_real_capture_for_a_second_opener_and_takes_it_back(node: Path, tmp_path: Path) -> None:
    """The whole path: FrameSource's grab thread holds the node, another process opens it, the daemon lets go
    (status "camera in use", policy rule 10 notifies), and watches again once the other process closes it."""
    captures: list = []
    source = FrameSource(0, target_fps=20, capture_factory=lambda _: NodeCapture(node, captures))
    recorder = DryRunRecorder()
    events = EventLog(tmp_path / "events.jsonl")
    policy = Policy(unknown_seconds=1.0, away_seconds=0, onlooker="notify", grace_seconds=1.0, camera_lost="notify",
                    camera_in_use="notify", camera_in_use_idle_s=60)
    loop = Loop(source=source, person=OnePerson(), faces=CountingFaces(), gallery=None, matcher=None,
                trigger=CountTrigger(0.0, 0.0), tracker=Tracker(0.3, 0.2, 2.0), events=events, fps=20, active_fps=20,
                policy=PolicyRunner(LockPolicy(policy), recorder, recorder, events))
    loop.camera_yield = CameraYield(node, lambda busy: source.release() if busy else None, resume_after_s=0.5)
    daemon = Daemon(loop)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: daemon.state.frames >= 3, 10.0, what="frames")
        other, opened_at = _open_elsewhere(node)
        wait_for(lambda: daemon.state.status == "camera in use", 10.0, what="the yield")
        wait_for(lambda: captures[-1][0] == "close", 10.0, what="the capture to close")
        latency_ms = (captures[-1][1] - opened_at) * 1000
        print(f"daemon released the camera {latency_ms:.1f} ms after the other app opened it")
        assert other_holders(node) == [other.pid]  # only the other app holds it now
        wait_for(lambda: [e.action for e in recorder.entries] == ["notify"], 10.0, what="the notice")
        assert recorder.entries[0].reason == "facewatch: camera in use by another app"
        frames = daemon.state.frames
        time.sleep(0.5)
        assert daemon.state.frames == frames  # not watching meanwhile
        other.stdin.close()
        other.wait(5)
        wait_for(lambda: daemon.state.frames > frames + 2, 10.0, what="watching again")
        assert captures[-1][0] == "open"
        states = [e.get("state") for e in _events(tmp_path) if e["event"] == "camera"]
        assert states == ["camera in use", "free again"]
    finally:
        daemon.stop()
        thread.join(10)


def _events(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
