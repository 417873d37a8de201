"""Step aside when another program opens the camera: release it at once, take it back once that program is done.

Rules:
1. Linux: inotify (through ctypes, no extra package) reports IN_OPEN and IN_CLOSE on the camera's device node,
   /dev/videoN for camera index N. The watcher never opens the node itself, so a special file cannot block it.
2. An open is another program's only if /proc shows a process other than facewatch holding the node when the
   event is read (facewatch's own reopen fires IN_OPEN too). It is checked at once, not after a settling time,
   because a call app asks for the stream within milliseconds of opening: a program that only glances at the
   device (a browser listing cameras) may therefore be yielded to as well, for resume_after_s.
3. The camera counts as free once no other process has held it for `resume_after_s` (a call app that closes and
   reopens the device while it changes resolution keeps it); checked on every close event and every
   `recheck_s` while yielded, so a missed event cannot keep the camera away for good.
4. Limits: /proc shows another user's processes only to root, so a camera taken by another user is not seen;
   a program that keeps the node open without streaming is yielded to as well (the "camera" event names its
   PID); a node missing at start (camera unplugged) is not watched.
   Windows and macOS have no watcher here (macOS lets apps share the camera; Windows offers no public "opened
   by" notification), so `watch_camera` returns None there and `facewatch doctor` says so.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("facewatch.camera")

IN_OPEN = 0x20
IN_CLOSE_WRITE = 0x08
IN_CLOSE_NOWRITE = 0x10
IN_IGNORED = 0x8000  # the watch went away (the node was removed: camera unplugged)
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then len bytes of name)
RESUME_AFTER_S = 2.0
RECHECK_S = 2.0

Holders = Callable[[Path], list[int]]


def camera_device(source: int | str, platform: str = sys.platform) -> Path | None:
    """The device node a camera index opens on this OS (V4L2: /dev/videoN), or None where there is no node."""
    if platform.startswith("linux") and isinstance(source, int):
        return Path(f"/dev/video{source}")
    return None


def other_holders(device: Path, proc: Path = Path("/proc"), me: int | None = None) -> list[int]:
    """PIDs other than ours with an open descriptor on `device` (rule 2); unreadable processes are skipped."""
    me = os.getpid() if me is None else me
    target = os.path.realpath(device)
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        fd_dir = os.path.join(entry.path, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's process
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) == target:
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return found


class _Inotify:
    """One inotify descriptor with one watch, read without blocking; closes cleanly."""

    def __init__(self, path: Path, mask: int, libc: ctypes.CDLL | None = None) -> None:
        libc = libc or ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        if libc.inotify_add_watch(self.fd, os.fsencode(path), mask) < 0:
            errno = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(errno, f"inotify_add_watch {path}: {os.strerror(errno)}")

    def masks(self) -> list[int]:
        """The masks of every event queued now (none when nothing is queued)."""
        out: list[int] = []
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                return out
            offset = 0
            while offset + _EVENT.size <= len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                out.append(mask)
                offset += _EVENT.size + length

    def close(self) -> None:
        """Drop the watch and the descriptor."""
        os.close(self.fd)


class CameraYield:
    """Watches one camera node in a thread; `busy` is True while another program holds it (rules 1-3).

    on_change(busy) runs in the watcher thread the moment the state flips, so the caller can release the camera
    without waiting for its own loop; `yield_ms` is how long the last yield took from the open event to the
    callback's return (the camera released).
    """

    def __init__(self, device: Path, on_change: Callable[[bool], None], holders: Holders = other_holders,
                 resume_after_s: float = RESUME_AFTER_S, recheck_s: float = RECHECK_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.device = device
        self._on_change = on_change
        self._holders = holders
        self._resume_after_s = resume_after_s
        self._recheck_s = recheck_s
        self._clock = clock
        self._inotify = _Inotify(device, IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self.busy = False
        self.holders: list[int] = []
        self.yield_ms: float | None = None
        self._free_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="facewatch-camera-yield", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop watching (idempotent); the thread exits and the descriptors are closed."""
        if self._stop:
            return
        self._stop = True
        os.write(self._wake_w, b"x")
        self._thread.join(2.0)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._inotify.close()

    def _run(self) -> None:
        """Wait for events (or the recheck timer while yielded) and re-judge who holds the node."""
        while not self._stop:
            timeout = self._recheck_s if self.busy else None
            if self.busy and self._free_since is not None:
                timeout = max(0.0, self._free_since + self._resume_after_s - self._clock())
            ready, _, _ = select.select([self._inotify.fd, self._wake_r], [], [], timeout)
            if self._stop:
                return
            masks = self._inotify.masks() if self._inotify.fd in ready else []
            if any(m & IN_IGNORED for m in masks):
                log.info("camera node %s went away (unplugged); no longer watching it", self.device)
                if self.busy:
                    self.busy = False
                    self._on_change(False)
                return
            self._judge(self._clock())

    def _judge(self, started: float) -> None:
        """Rules 2-3: flip `busy` when another holder appears or has been gone for resume_after_s."""
        try:
            self.holders = self._holders(self.device)
        except OSError as exc:
            log.debug("cannot list the holders of %s: %s", self.device, exc)
            return
        if self.holders:
            self._free_since = None
            if not self.busy:
                self.busy = True
                self._on_change(True)
                self.yield_ms = (self._clock() - started) * 1000
                log.info("camera in use by another app (pid %s): released in %.1f ms",
                         ", ".join(map(str, self.holders)), self.yield_ms)
            return
        if not self.busy:
            return
        now = self._clock()
        if self._free_since is None:
            self._free_since = now
        if now - self._free_since >= self._resume_after_s:
            self.busy = False
            self._free_since = None
            log.info("camera free again: %s", self.device)
            self._on_change(False)


def watch_camera(source: int | str, on_change: Callable[[bool], None], platform: str = sys.platform,
                 **options: Any) -> CameraYield | None:
    """A CameraYield for a camera index on Linux; None (logged once) where the OS or the node rules it out."""
    device = camera_device(source, platform)
    if device is None:
        return None
    try:
        return CameraYield(device, on_change, **options)
    except OSError as exc:
        log.warning("cannot watch %s for other apps (%s); facewatch will not step aside for them", device, exc)
        return None


def describe_support(platform: str = sys.platform) -> str:
    """One line for doctor: whether facewatch can see another app take the camera here, and how."""
    if platform.startswith("linux"):
        return "inotify on /dev/videoN: released when another app opens it, retaken when it closes"
    return f"not supported on {platform}: facewatch keeps the camera while it watches (pause it from the tray)"
