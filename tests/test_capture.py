"""FrameSource: file replay on the video clock, fps pacing, and live sources that unplug, stall or lie."""

from __future__ import annotations

import logging
import math
import threading
import time

import cv2
import numpy as np
import pytest

from facewatch.capture import (
    FrameSource,
    SourceError,
    describe_source,
    open_error_hint,
    probe_camera,
)

CLIP = "face_recognition_examples/examples/short_hamilton_clip.mp4"
CLIP_FRAMES = 275
CLIP_FPS = 29.97
UNPLUG = "unplug"  # grab() fails, as when the USB cable is pulled
STALL = "stall"  # grab() blocks, as a dead stream does


def good(n: int) -> np.ndarray:
    """A small valid BGR frame whose pixels all equal n % 256, so a test can tell frames apart."""
    return np.full((4, 6, 3), n % 256, np.uint8)


CORRUPT = [None, np.zeros((4, 6), np.uint8), np.zeros((0, 0, 3), np.uint8)]  # none, grey, empty


class FakeClock:
    """Injected clock and backoff sleep: sleeping only records the delay and moves time forward.

    Clearing `gate` holds the grab thread inside its next backoff sleep, so a test can look at the
    "camera lost" state before the reconnect happens.
    """

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.gate.wait(5)
        self.slept.append(seconds)
        self.now += seconds


class FakeCapture:
    """A scripted cv2.VideoCapture: each grab takes the next script item (a frame, a corrupt frame,
    UNPLUG or STALL); once the script is used up it delivers good frames numbered by grab count."""

    def __init__(self, script=(), opened: bool = True, fps: float = 30.0, clock: FakeClock | None = None) -> None:
        self.script = list(script)
        self.opened = opened
        self.fps = fps
        self.clock = clock  # when set, each grab advances it by one frame interval
        self.grabs = 0
        self.sets: dict[int, float] = {}
        self.current = None
        self.stalled = threading.Event()
        self.unblock = threading.Event()
        self.released = threading.Event()

    def isOpened(self) -> bool:
        return self.opened

    def grab(self) -> bool:
        time.sleep(0.001)  # a real camera paces the grab loop; keep the fake from spinning a core
        item = self.script.pop(0) if self.script else good(self.grabs)
        if isinstance(item, str) and item == STALL:
            self.stalled.set()
            self.unblock.wait(5)
            return False
        if isinstance(item, str) and item == UNPLUG:
            return False
        if self.clock is not None:
            self.clock.now += 1.0 / self.fps
        self.grabs += 1
        self.current = item
        return True

    def retrieve(self):
        return self.current is not None, self.current

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, prop: int, value: float) -> bool:
        self.sets[prop] = value
        return True

    def release(self) -> None:
        self.released.set()


class RetrieveScripted(FakeCapture):
    """A camera whose script advances only when a frame is decoded, so which frames get decoded does
    not depend on thread timing (the live source decodes only frames the consumer waits for)."""

    def grab(self) -> bool:
        time.sleep(0.001)
        self.grabs += 1
        return True

    def retrieve(self):
        item = self.script.pop(0) if self.script else good(99)
        return item is not None, item


class FakeCamera:
    """Capture factory: the n-th open returns plans[n]; None stands for a camera that will not open."""

    def __init__(self, *plans: FakeCapture | None) -> None:
        self.plans = list(plans)
        self.opened: list[FakeCapture] = []
        self.sources: list[int | str] = []

    def __call__(self, source: int | str) -> FakeCapture:
        self.sources.append(source)
        plan = self.plans.pop(0) if self.plans else FakeCapture()
        cap = plan if plan is not None else FakeCapture(opened=False)
        self.opened.append(cap)
        return cap


def live(camera: FakeCamera, clock: FakeClock | None = None, **kwargs) -> FrameSource:
    """A FrameSource on fake camera 0 with 1 s initial / 4 s max backoff, driven by `clock` if given."""
    timing = {"clock": clock, "sleep": clock.sleep} if clock is not None else {}
    return FrameSource(0, capture_factory=camera, reconnect_initial_s=1.0, reconnect_max_s=4.0, **timing, **kwargs)


def capture_lines(caplog) -> list[tuple[str, str]]:
    """(level, message) of the facewatch.capture records at INFO and above; each must be one line."""
    records = [r for r in caplog.records if r.name == "facewatch.capture" and r.levelno >= logging.INFO]
    for record in records:
        assert "\n" not in record.getMessage() and record.exc_info is None
    return [(r.levelname, r.getMessage()) for r in records]


# --- file replay -------------------------------------------------------------------------------


def read_all(src: FrameSource) -> list:
    """Read until the replay ends; return the packets."""
    packets = []
    while (packet := src.read()) is not None:
        packets.append(packet)
    return packets


def test_replay_at_native_fps_delivers_every_frame_then_ends(data_dir):
    with FrameSource(data_dir / CLIP) as src:
        assert not src.is_live and src.state == "running"
        packets = read_all(src)
        assert src.state == "ended"
        assert src.read() is None
    assert [p.index for p in packets] == list(range(CLIP_FRAMES))
    assert [p.t for p in packets] == pytest.approx([i / CLIP_FPS for i in range(CLIP_FRAMES)], abs=1e-6)
    assert {(p.frame.shape, p.frame.dtype) for p in packets} == {((360, 640, 3), np.dtype(np.uint8))}
    assert src.corrupt_frames == 0
    direct = cv2.VideoCapture(str(data_dir / CLIP))  # same pixels, same BGR order as OpenCV's own read
    for _ in range(101):
        ok, frame = direct.read()
    direct.release()
    assert ok and np.array_equal(packets[100].frame, frame)


def test_replay_at_2_fps_delivers_every_15th_frame_half_a_second_apart(data_dir):
    # Due times are a 0.5 s grid from the first frame; the first frame at or after k * 0.5 s is
    # ceil(k * 0.5 * 29.97) = 15k, so frames 0, 15, ..., 270: 19 frames.
    with FrameSource(data_dir / CLIP, target_fps=2) as src:
        packets = read_all(src)
    assert [p.index for p in packets] == list(range(0, CLIP_FRAMES, 15))
    gaps = np.diff([p.t for p in packets])
    assert gaps == pytest.approx(np.full(18, 15 / CLIP_FPS), abs=1e-9)
    assert (gaps >= 0.5).all() and (gaps < 0.501).all()


def test_changing_target_fps_mid_replay_applies_to_the_next_read(data_dir):
    with FrameSource(data_dir / CLIP, target_fps=2) as src:
        indexes = [src.read().index for _ in range(3)]  # 0, 15, 30 (t = 1.001 s)
        src.target_fps = 10  # next due 1.101 s: frames 33, 36, 39
        indexes += [src.read().index for _ in range(3)]
        src.target_fps = None  # every frame
        indexes += [src.read().index for _ in range(3)]
        src.target_fps = 1  # 42 was at 1.401 s, next due 2.401 s: frame 72 (2.402 s)
        indexes.append(src.read().index)
    assert indexes == [0, 15, 30, 33, 36, 39, 40, 41, 42, 72]


def test_setting_the_same_target_fps_before_every_read_keeps_the_grid(data_dir):
    # 8 fps on a 29.97 fps clip: due every 3.746 frames, so gaps of 3 and 4 frames averaging 8 fps:
    # frame ceil(k * 29.97 / 8) for k = 0..73, 74 frames (re-anchoring each read would give every 4th: 69).
    expected = [math.ceil(k * CLIP_FPS / 8 - 1e-6) for k in range(74)]
    with FrameSource(data_dir / CLIP, target_fps=8) as src:
        assert [p.index for p in read_all(src)] == expected
    with FrameSource(data_dir / CLIP) as src:
        indexes = []
        while True:
            src.target_fps = 8  # as the daemon does before each read
            if (packet := src.read()) is None:
                break
            indexes.append(packet.index)
    assert indexes == expected and expected[-1] == 274


def test_paused_replay_resumes_where_it_stopped(data_dir):
    with FrameSource(data_dir / CLIP) as src:
        assert [src.read().index for _ in range(2)] == [0, 1]
        src.release()
        assert src.state == "released"
        assert src.read().frame is None
        src.reopen()
        assert src.state == "running" and src.read().index == 2


def test_missing_or_undecodable_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=f"no video file at {missing}"):
        FrameSource(missing)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(SourceError, match=f"cannot decode video {text}"):
        FrameSource(text)
    assert issubclass(SourceError, ValueError)


def test_corrupt_frames_in_a_file_are_skipped_and_counted(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"")  # must exist; the fake decoder supplies the frames
    camera = FakeCamera(FakeCapture([good(0), *CORRUPT, good(4), UNPLUG], fps=10.0))
    with FrameSource(path, capture_factory=camera) as src:
        packets = read_all(src)
        assert src.corrupt_frames == 3 and src.state == "ended"
    assert [(p.index, p.t, int(p.frame[0, 0, 0])) for p in packets] == [(0, 0.0, 0), (4, 0.4, 4)]
    assert camera.opened[0].released.is_set()


# --- live sources --------------------------------------------------------------------------------


def test_camera_busy_at_start_is_lost_then_recovers_with_backoff(caplog):
    caplog.set_level(logging.INFO, "facewatch.capture")
    clock = FakeClock()
    clock.gate.clear()
    working = FakeCapture()
    camera = FakeCamera(None, None, None, None, working)  # the first four opens fail
    with live(camera, clock, width=640, height=480) as src:
        assert src.is_live and src.state == "camera lost"
        empty = src.read(timeout=0.05)
        assert (empty.frame, empty.index, empty.t) == (None, -1, 100.0)
        clock.gate.set()
        packet = src.read(timeout=2)
        assert packet.frame is not None and src.state == "running"
    assert clock.slept == [1.0, 2.0, 4.0, 4.0]  # doubling from 1 s, capped at 4 s
    assert camera.sources == [0] * 5
    assert working.sets == {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480}
    assert capture_lines(caplog) == [
        ("WARNING", "camera lost: camera 0 (could not open: unplugged, busy or no permission); "
                    "reconnecting every 1.0-4.0 s"),
        ("INFO", "camera back: camera 0"),
    ]


def test_camera_unplugged_mid_run_reconnects(caplog):
    caplog.set_level(logging.INFO, "facewatch.capture")
    clock = FakeClock()
    clock.gate.clear()
    first = FakeCapture([good(0), good(1), good(2), UNPLUG])
    camera = FakeCamera(first, None, None, FakeCapture())
    with FrameSource("0", capture_factory=camera, clock=clock, sleep=clock.sleep,
                     reconnect_initial_s=1.0, reconnect_max_s=4.0) as src:
        before = []
        while (packet := src.read(timeout=0.5)).frame is not None:
            before.append(packet.index)
        assert src.state == "camera lost" and first.released.is_set()
        assert all(i <= 2 for i in before)
        clock.gate.set()
        packet = src.read(timeout=2)
        assert src.state == "running" and packet.index >= 3
    assert clock.slept == [1.0, 2.0, 4.0]
    assert [level for level, _ in capture_lines(caplog)] == ["WARNING", "INFO"]
    assert "(no frame from the device)" in capture_lines(caplog)[0][1]


def test_stalled_stream_is_lost_after_the_stall_timeout(caplog):
    caplog.set_level(logging.INFO, "facewatch.capture")
    clock = FakeClock()
    stuck = FakeCapture([good(0), good(1), STALL])
    camera = FakeCamera(stuck, FakeCapture())
    with live(camera, clock, stall_timeout_s=5.0) as src:
        assert src.read(timeout=1).frame is not None
        assert stuck.stalled.wait(2)
        clock.now += 4.9
        assert src.read(timeout=0.05).frame is None and src.state == "running"  # not yet 5 s
        clock.gate.clear()
        clock.now += 0.6
        assert src.read(timeout=0.05).frame is None and src.state == "camera lost"
        clock.gate.set()
        assert src.read(timeout=2).frame is not None and src.state == "running"
        stuck.unblock.set()  # the stuck grab finally returns: its retired thread frees the capture
        assert stuck.released.wait(2)
    assert clock.slept == [1.0]
    assert capture_lines(caplog)[0] == (
        "WARNING", "camera lost: camera 0 (no frame for 5.5 s); reconnecting every 1.0-4.0 s")


def test_stream_url_down_at_start_is_logged_without_its_password(caplog):
    caplog.set_level(logging.INFO, "facewatch.capture")
    clock = FakeClock()
    clock.gate.clear()
    stream = FakeCapture()
    camera = FakeCamera(None, stream)
    url = "rtsp://admin:secret@cam.local/live"
    with FrameSource(url, capture_factory=camera, clock=clock, sleep=clock.sleep, width=640, height=480) as src:
        assert src.kind == "stream" and src.state == "camera lost"
        clock.gate.set()
        assert src.read(timeout=2).frame is not None
    assert camera.sources == [url, url] and stream.sets == {}  # the size request is for cameras only
    assert capture_lines(caplog) == [
        ("WARNING", "camera lost: stream rtsp://admin:***@cam.local/live (could not open: unreachable, "
                    "refused or not a video stream); reconnecting every 1.0-30.0 s"),
        ("INFO", "camera back: stream rtsp://admin:***@cam.local/live"),
    ]


def test_corrupt_live_frames_are_skipped_and_counted():
    camera = FakeCamera(RetrieveScripted([good(0), *CORRUPT, good(4)]))
    with live(camera) as src:
        values = [int(src.read(timeout=2).frame[0, 0, 0]) for _ in range(2)]
        assert values == [0, 4]
        assert src.corrupt_frames == 3


def test_slow_consumer_gets_the_newest_frame_not_a_queued_one():
    fake = FakeCapture()
    with live(FakeCamera(fake)) as src:
        first = src.read(timeout=2)
        time.sleep(0.2)  # a slow consumer: the camera keeps grabbing meanwhile
        grabbed_before = fake.grabs
        second = src.read(timeout=2)
    # Nothing grabbed before the read was kept: the packet is the grab in flight at the call, or later.
    assert second.index >= grabbed_before - 1 > first.index + 10
    assert int(second.frame[0, 0, 0]) == second.index % 256


def test_live_fps_is_throttled_by_dropping_frames():
    clock = FakeClock()
    with live(FakeCamera(FakeCapture(clock=clock)), clock, target_fps=2) as src:
        packets = [src.read(timeout=2) for _ in range(4)]
    gaps = np.diff([p.t for p in packets])
    assert (gaps >= 0.5 - 1e-9).all()  # at most 2 frames per (camera) second
    assert (np.diff([p.index for p in packets]) >= 15).all()  # a 30 fps camera: 14 of 15 dropped


def test_release_frees_the_camera_and_reopen_takes_it_back():
    first, second = FakeCapture(), FakeCapture()
    camera = FakeCamera(first, second)
    src = live(camera)
    assert src.read(timeout=2).frame is not None
    src.release()
    assert src.state == "released" and first.released.is_set()
    start = time.monotonic()
    assert src.read(timeout=5).frame is None
    assert time.monotonic() - start < 0.5  # released: returns at once, nothing to wait for
    src.reopen()
    assert src.state == "running" and src.read(timeout=2).frame is not None
    src.close()
    assert src.state == "ended" and second.released.is_set()
    assert src.read() is None


# --- helpers for the CLI and doctor ------------------------------------------------------------


def test_probe_camera():
    assert probe_camera(0, FakeCamera(FakeCapture()))
    assert not probe_camera(0, FakeCamera(None))
    assert not probe_camera(0, FakeCamera(FakeCapture([UNPLUG])))
    assert not probe_camera(0, FakeCamera(FakeCapture([None])))

    def broken(source):
        raise cv2.error("driver exploded")

    assert not probe_camera(0, broken)
    assert not probe_camera(7)  # the real OpenCV: no camera on this machine


def test_hints_and_names():
    hint = ("no camera at index 0 (unplugged, busy or no permission) — "
            "replay a video with: facewatch run --source clip.mp4")
    assert open_error_hint(0) == open_error_hint("0") == hint
    url = "rtsp://admin:secret@cam.local:554/live"
    assert describe_source(url) == "stream rtsp://admin:***@cam.local:554/live"
    assert "secret" not in open_error_hint(url)
    assert open_error_hint("/nowhere/clip.mp4") == "no video file at /nowhere/clip.mp4"


def test_bad_arguments_name_what_is_wrong(data_dir):
    with pytest.raises(ValueError, match="target_fps must be a positive number"):
        FrameSource(data_dir / CLIP, target_fps=0)
    with pytest.raises(ValueError, match="reconnect_initial_s <= reconnect_max_s"):
        FrameSource(0, reconnect_initial_s=10, reconnect_max_s=1)
