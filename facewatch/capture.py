"""FrameSource: BGR frames from a camera index, a video file or a stream URL, paced to a target fps.

Files replay on the video's own clock, as fast as the consumer reads. Live sources (cameras, URLs) are
grabbed in a background thread that keeps no queue: it decodes only the frame the consumer is waiting
for, so a slow consumer always gets a frame grabbed after it asked, never a stale one. A lost or stalled
live source reconnects with exponential backoff; nothing raises out of read().
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Literal, Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np

from facewatch.detectors.base import frame_problem

log = logging.getLogger("facewatch.capture")

State = Literal["running", "camera lost", "released", "ended"]
SourceSpec = int | str | os.PathLike

REPLAY_HINT = "replay a video with: facewatch run --source clip.mp4"
# Frame times within this of a due time count as due (float sums of 1/fps are not exact).
_EPS = 1e-6
# A video file whose container reports no frame rate is replayed as if it ran at this rate.
_FALLBACK_FILE_FPS = 30.0
# How long release()/close() wait for the grab thread to hand the camera back.
_JOIN_S = 2.0
_URL = re.compile(r"^[a-z][a-z0-9+.-]+://", re.IGNORECASE)
_OPEN_FAILED = {
    "camera": "could not open: unplugged, busy or no permission",
    "stream": "could not open: unreachable, refused or not a video stream",
}


class Capture(Protocol):
    """The part of cv2.VideoCapture that FrameSource uses (fakes in tests implement the same)."""

    def isOpened(self) -> bool: ...
    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def set(self, prop: int, value: float) -> bool: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[int | str], Capture]


class SourceError(ValueError):
    """A video file source that cannot be used (missing or undecodable); the message names the path."""


@dataclass(frozen=True)
class FramePacket:
    """One read: a BGR uint8 frame, its index in the source and its time in seconds.

    frame is None (and index -1) when no frame was due within read()'s timeout: see FrameSource.state.
    """

    frame: np.ndarray | None
    index: int
    t: float


def parse_source(source: SourceSpec) -> int | str:
    """Normalise a source: a camera index (int or digit string) becomes an int, anything else a str."""
    if isinstance(source, bool):
        raise ValueError(f"camera source must be an index, a file path or a URL, got {source!r}")
    if isinstance(source, int):
        if source < 0:
            raise ValueError(f"camera index must be >= 0, got {source}")
        return source
    text = os.fspath(source)
    return int(text) if text.strip().isdigit() else text


def source_kind(source: SourceSpec) -> Literal["camera", "stream", "file"]:
    """Classify a source: a camera index, a stream URL (scheme://...), or a video file path."""
    value = parse_source(source)
    if isinstance(value, int):
        return "camera"
    return "stream" if _URL.match(value) else "file"


def describe_source(source: SourceSpec) -> str:
    """A short name for logs and messages; a stream URL's password is masked."""
    value = parse_source(source)
    kind = source_kind(value)
    if kind == "camera":
        return f"camera {value}"
    if kind == "file":
        return f"video {value}"
    parts = urlsplit(str(value))
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        value = parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()
    return f"stream {value}"


def open_error_hint(source: SourceSpec) -> str:
    """One line for the CLI when `source` cannot be opened: what is wrong and what to try instead."""
    value = parse_source(source)
    kind = source_kind(value)
    if kind == "camera":
        return f"no camera at index {value} (unplugged, busy or no permission) — {REPLAY_HINT}"
    if kind == "stream":
        return f"cannot open {describe_source(value)} — check the URL and the network, or {REPLAY_HINT}"
    if not Path(value).is_file():
        return f"no video file at {value}"
    return f"cannot decode video {value} (not a video, or a codec OpenCV lacks)"


def open_capture(source: int | str, timeout_s: float = 5.0) -> Capture:
    """Default capture factory: cv2.VideoCapture, with open/read timeouts for stream URLs so a dead
    stream returns instead of blocking the grab thread forever."""
    if isinstance(source, str) and _URL.match(source):
        ms = int(timeout_s * 1000)
        return cv2.VideoCapture(
            source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        )
    return cv2.VideoCapture(source)


def probe_camera(index: int, capture_factory: CaptureFactory = open_capture) -> bool:
    """True if camera `index` opens and delivers one frame (`facewatch doctor`, start-up checks)."""
    try:
        cap = capture_factory(index)
    except Exception:  # a driver error means "no usable camera here", which is the answer
        return False
    try:
        if not cap.isOpened() or not cap.grab():
            return False
        ok, frame = cap.retrieve()
        return ok and frame_problem(frame) is None
    except Exception:
        return False
    finally:
        cap.release()


def _first_line(exc: BaseException) -> str:
    """An exception as one short log-friendly line (OpenCV errors span several)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class _Pacer:
    """Picks which frame times to deliver: at most target_fps per second of source time, on a fixed grid.

    The first frame is due at once; then one per period after it. A consumer that falls a full period
    behind restarts the grid at its last frame rather than getting a burst. Thread-safe.
    """

    def __init__(self, target_fps: float | None) -> None:
        self._lock = threading.Lock()
        self._period: float | None = None
        self._next_due: float | None = None
        self._last_t: float | None = None
        self.target_fps = target_fps

    @property
    def target_fps(self) -> float | None:
        """Frames per second to deliver; None = every frame."""
        with self._lock:
            return None if self._period is None else 1.0 / self._period

    @target_fps.setter
    def target_fps(self, fps: float | None) -> None:
        if fps is not None and not (isinstance(fps, (int, float, np.floating)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"target_fps must be a positive number or None (every frame), got {fps!r}")
        period = None if fps is None else 1.0 / fps
        with self._lock:
            if period == self._period:
                return  # the daemon sets the rate before every read; an unchanged rate keeps its grid
            self._period = period
            # A new rate counts from the last delivered frame, so it takes effect on the very next read.
            if self._last_t is not None:
                self._next_due = None if self._period is None else self._last_t + self._period

    def is_due(self, t: float) -> bool:
        """Whether a frame at time t should be delivered."""
        with self._lock:
            return self._next_due is None or t >= self._next_due - _EPS

    def mark(self, t: float) -> None:
        """Record that the frame at time t was delivered."""
        with self._lock:
            self._last_t = t
            if self._period is None:
                self._next_due = None
                return
            due = (t if self._next_due is None else self._next_due) + self._period
            self._next_due = due if due > t else t + self._period


class _Backend(Protocol):
    """What the file and live halves of FrameSource both provide."""

    state: State
    corrupt_frames: int

    def read(self, timeout: float) -> FramePacket | None: ...
    def release(self) -> None: ...
    def reopen(self) -> None: ...
    def close(self) -> None: ...


class _Replay:
    """A video file read frame by frame on its own clock (t = index / fps), skipping frames not due."""

    def __init__(self, path: str, pacer: _Pacer, factory: CaptureFactory) -> None:
        if not Path(path).is_file():
            raise SourceError(open_error_hint(path))
        cap = factory(path)
        if not cap.isOpened():
            cap.release()
            raise SourceError(open_error_hint(path))
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not (math.isfinite(fps) and fps > 0):
            log.warning("%s reports no frame rate; replaying it at %.0f fps", path, _FALLBACK_FILE_FPS)
            fps = _FALLBACK_FILE_FPS
        self.fps = fps
        self._cap = cap
        self._pacer = pacer
        self._next_index = 0
        self.state: State = "running"
        self.corrupt_frames = 0

    def read(self, timeout: float) -> FramePacket | None:
        """The next due frame, or None once the file is exhausted; never sleeps (timeout is unused)."""
        if self.state == "ended":
            return None
        if self.state == "released":
            return FramePacket(None, -1, self._next_index / self.fps)
        while self._cap.grab():
            index, self._next_index = self._next_index, self._next_index + 1
            t = index / self.fps
            if not self._pacer.is_due(t):
                continue  # skipped without the BGR conversion retrieve() would cost
            ok, frame = self._cap.retrieve()
            if not (ok and frame_problem(frame) is None):
                self.corrupt_frames += 1
                continue
            self._pacer.mark(t)
            return FramePacket(frame, index, t)
        self.close()
        return None

    def release(self) -> None:
        """Pause: a file holds nothing another program needs, so the position is kept and reopen() resumes."""
        if self.state == "running":
            self.state = "released"

    def reopen(self) -> None:
        """Resume a paused replay where it stopped."""
        if self.state == "released":
            self.state = "running"

    def close(self) -> None:
        """Free the decoder; the replay has ended."""
        self._cap.release()
        self.state = "ended"


class _Live:
    """A camera or stream grabbed by one background thread per connection attempt chain.

    The thread grabs every frame (so the driver never buffers) but decodes (retrieve) only while the
    consumer waits for a due frame; the packet it hands over was grabbed after the consumer asked.
    """

    def __init__(
        self,
        source: int | str,
        pacer: _Pacer,
        factory: CaptureFactory,
        size: tuple[int | None, int | None],
        backoff: tuple[float, float],
        stall_timeout_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], object] | None,
    ) -> None:
        self._source = source
        self._name = describe_source(source)
        self._pacer = pacer
        self._factory = factory
        self._size = size
        self._initial_s, self._max_s = backoff
        self._stall_s = stall_timeout_s
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._wanted = False
        self._ready: FramePacket | None = None
        self._grabbed = 0
        self._alive_t = 0.0
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.state: State = "released"
        self.corrupt_frames = 0
        self.reopen()  # starting is reopening a released source

    # --- consumer side -------------------------------------------------------------------------

    def read(self, timeout: float) -> FramePacket | None:
        """The next due frame grabbed after this call, or an empty packet after `timeout` s; None once closed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.state == "ended":
                    return None
                if self._ready is not None:
                    packet, self._ready = self._ready, None
                    return packet
                if self.state == "released":
                    return FramePacket(None, -1, self._clock())
                self._check_stall()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._wanted = False  # a frame decoded later would be stale by the next read
                    return FramePacket(None, -1, self._clock())
                self._wanted = True
                self._cond.wait(remaining)

    def _check_stall(self) -> None:
        """Under the lock: a running source silent for stall_timeout_s is lost; restart its grab thread."""
        silent = self._clock() - self._alive_t
        if self.state == "running" and silent > self._stall_s:
            self._lose(f"no frame for {silent:.1f} s")
            self._start(None)  # the stuck thread releases its capture whenever its grab returns

    def release(self) -> None:
        """Stop grabbing and hand the device back (screen locked, paused); reopen() resumes."""
        if self.state != "ended":
            self._stop_thread("released")

    def reopen(self) -> None:
        """Connect again after release(): one attempt now, then background retries if it fails."""
        with self._cond:
            if self.state != "released":
                return
        cap, reason = self._connect()
        with self._cond:
            if cap is None:
                self._lose(reason)
            else:
                self.state = "running"
                self._alive_t = self._clock()
            self._start(cap)

    def close(self) -> None:
        """Stop for good; read() returns None from now on."""
        self._stop_thread("ended")

    def _start(self, cap: Capture | None) -> None:
        """Under the lock: retire the current grab thread and start a fresh one on `cap` (None = reconnect)."""
        self._cancel.set()
        self._cancel = cancel = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(cap, cancel), name=f"facewatch-capture {self._name}", daemon=True
        )
        self._thread.start()

    def _stop_thread(self, state: State) -> None:
        """Enter `state`, cancel the grab thread and wait (briefly) until it has released the device."""
        with self._cond:
            self.state = state
            self._cancel.set()
            self._ready, self._wanted = None, False
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(_JOIN_S)

    def _lose(self, reason: str) -> None:
        """Under the lock: enter "camera lost", logged once per loss as one line."""
        if self.state != "camera lost":
            log.warning(
                "camera lost: %s (%s); reconnecting every %.1f-%.1f s",
                self._name, reason, self._initial_s, self._max_s,
            )
        self.state = "camera lost"
        self._cond.notify_all()

    # --- grab thread ---------------------------------------------------------------------------

    def _connect(self) -> tuple[Capture | None, str]:
        """One attempt to open the source; returns (capture, "") or (None, why it failed)."""
        try:
            cap = self._factory(self._source)
        except Exception as exc:
            return None, f"open failed: {_first_line(exc)}"
        try:
            if not cap.isOpened():
                cap.release()
                return None, _OPEN_FAILED[source_kind(self._source)]
            width, height = self._size
            if isinstance(self._source, int):  # best effort: the driver picks its nearest mode
                if width:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                if height:
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        except Exception as exc:
            cap.release()
            return None, f"open failed: {_first_line(exc)}"
        return cap, ""

    def _run(self, cap: Capture | None, cancel: threading.Event) -> None:
        """Grab until cancelled; when the source fails, reconnect with exponential backoff."""
        wait = self._sleep or cancel.wait
        delay = self._initial_s
        try:
            while not cancel.is_set():
                if cap is None:
                    wait(delay)
                    if cancel.is_set():
                        return
                    cap, reason = self._connect()
                    if cap is None:
                        delay = min(delay * 2, self._max_s)
                        log.debug("reconnect to %s failed (%s); next try in %.1f s", self._name, reason, delay)
                        continue
                    self._recovered(cancel)
                if self._pump(cap, cancel):
                    delay = self._initial_s  # the connection worked: the next loss starts the backoff afresh
                    continue
                cap.release()
                cap = None
                with self._cond:
                    if not cancel.is_set():
                        self._lose("no frame from the device")
        finally:
            if cap is not None:
                cap.release()

    def _recovered(self, cancel: threading.Event) -> None:
        """A reconnect succeeded: back to "running"."""
        with self._cond:
            if cancel.is_set():
                return
            log.info("camera back: %s", self._name)
            self.state = "running"
            self._alive_t = self._clock()

    def _pump(self, cap: Capture, cancel: threading.Event) -> bool:
        """Grab one frame, decoding it only if the consumer waits for a due frame; False = source failed."""
        try:
            if not cap.grab():
                return False
        except Exception as exc:
            log.debug("grab from %s raised %s", self._name, _first_line(exc))
            return False
        t = self._clock()
        with self._cond:
            if cancel.is_set():
                return False  # retired (stall, release): the caller releases this capture
            index, self._grabbed = self._grabbed, self._grabbed + 1
            take = self._wanted and self._pacer.is_due(t)
            if not take:
                self._alive_t = t
                return True
        try:
            ok, frame = cap.retrieve()
        except Exception as exc:
            log.debug("retrieve from %s raised %s", self._name, _first_line(exc))
            ok, frame = False, None
        with self._cond:
            if not (ok and frame_problem(frame) is None):
                self.corrupt_frames += 1
                return True  # skipped; a source that only gives corrupt frames ends up stalled
            if cancel.is_set():
                return False
            self._alive_t = t
            if not self._wanted:
                return True  # the consumer gave up waiting meanwhile; this frame would be stale later
            self._pacer.mark(t)
            self._ready, self._wanted = FramePacket(frame, index, t), False
            self._cond.notify_all()
        return True


class Source(Protocol):
    """What the daemon reads frames from: FrameSource, or a stand-in in tests (same contract as FrameSource.read)."""

    state: State
    target_fps: float | None

    def read(self, timeout: float) -> FramePacket | None: ...
    def release(self) -> None: ...
    def reopen(self) -> None: ...
    def close(self) -> None: ...


class FrameSource:
    """Frames from a camera index, a video file or a stream URL, paced to `target_fps`.

    Contract of read(timeout):
    - returns a FramePacket with a BGR uint8 frame, its index in the source (frame number for files;
      count of frames grabbed for live sources) and its time t in seconds (files: index / file fps, so
      replays are deterministic and never sleep; live: clock() when grabbed, time.monotonic by default);
    - returns FramePacket(None, -1, now) when no frame was due within `timeout` seconds (live only: the
      camera is lost or reconnecting, the stream stalled, or the source is released) — check `state`;
    - returns None only when the source has ended: the replay finished, or close() was called;
    - never raises for device trouble: a lost camera, a stall (no frame for stall_timeout_s) or a camera
      busy at start sets state "camera lost", logs one line on logger "facewatch.capture", and
      reconnects in the background, waiting reconnect_initial_s, doubling up to reconnect_max_s.
    `target_fps` may be changed between reads (None = every frame). A missing or undecodable video file
    raises SourceError at construction; corrupt frames are skipped and counted in `corrupt_frames`.
    Attributes: `source` (int camera index or str path/URL) and `kind` ("camera", "stream" or "file").
    """

    def __init__(
        self,
        source: SourceSpec,
        *,
        target_fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        reconnect_initial_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        stall_timeout_s: float = 5.0,
        capture_factory: CaptureFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        """Open `source`. capture_factory(source) replaces cv2.VideoCapture; clock and sleep (the backoff
        wait; default: an interruptible wait) are injectable so tests run without real time."""
        if not (0 < reconnect_initial_s <= reconnect_max_s):
            raise ValueError(
                f"need 0 < reconnect_initial_s <= reconnect_max_s, got {reconnect_initial_s} and {reconnect_max_s}"
            )
        if not stall_timeout_s > 0:
            raise ValueError(f"stall_timeout_s must be > 0, got {stall_timeout_s}")
        self.source = parse_source(source)
        self.kind = source_kind(self.source)
        self._pacer = _Pacer(target_fps)
        factory = capture_factory or partial(open_capture, timeout_s=stall_timeout_s)
        self._backend: _Backend
        if self.kind == "file":
            self._backend = _Replay(str(self.source), self._pacer, factory)
        else:
            self._backend = _Live(
                self.source, self._pacer, factory, (width, height),
                (reconnect_initial_s, reconnect_max_s), stall_timeout_s, clock, sleep,
            )

    @property
    def target_fps(self) -> float | None:
        """Frames per second delivered (None = every frame); the daemon raises it while a trigger is pending."""
        return self._pacer.target_fps

    @target_fps.setter
    def target_fps(self, fps: float | None) -> None:
        self._pacer.target_fps = fps

    @property
    def state(self) -> State:
        """"running", "camera lost" (reconnecting), "released" (by release()) or "ended" (replay done / closed)."""
        return self._backend.state

    @property
    def corrupt_frames(self) -> int:
        """How many frames were skipped because the driver returned None, an empty or a wrongly shaped image."""
        return self._backend.corrupt_frames

    @property
    def is_live(self) -> bool:
        """True for cameras and streams (monotonic clock, reconnects), False for file replays."""
        return self.kind != "file"

    def read(self, timeout: float = 1.0) -> FramePacket | None:
        """The next due frame; see the class docstring for the empty-packet and None cases."""
        return self._backend.read(timeout)

    def release(self) -> None:
        """Free the camera (screen locked, paused) so other programs can use it; reopen() takes it back."""
        self._backend.release()

    def reopen(self) -> None:
        """Take the camera back after release(): one attempt now, background retries if it is busy."""
        self._backend.reopen()

    def close(self) -> None:
        """Stop and free everything; read() returns None afterwards."""
        self._backend.close()

    def __enter__(self) -> FrameSource:
        """Use as `with FrameSource(...) as src:`; closed on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the source, whatever ended the block."""
        self.close()
