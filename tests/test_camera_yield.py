"""The camera steps aside: a stand-in device file opened by a second process makes facewatch let go, and a close
gives it back; facewatch's own opens never count (facewatch/system/camera_yield.py rules 1-3)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from facewatch.system.camera_yield import CameraYield, camera_device, describe_support, other_holders

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify and /proc are Linux-only")

# A second program: opens the node, says when (CLOCK_MONOTONIC is one clock for every process), holds it
# until its stdin closes.
OPENER = (
    "import os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "print(time.monotonic(), flush=True)\n"
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


def test_a_program_that_opens_and_closes_at_once_is_not_yielded_to(node: Path) -> None:
    holder = Holder(node)
    watch = CameraYield(node, holder.on_change, resume_after_s=0.3, recheck_s=0.2)
    try:
        subprocess.run([sys.executable, "-c", f"open({str(node)!r}).close()"], check=True)
        time.sleep(0.5)
        assert holder.changes == [] and not watch.busy
    finally:
        watch.close()
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
