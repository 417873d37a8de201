"""Faults never crash the daemon and lose nothing: camera unplugged, busy or stalled, corrupt frames, a model
deleted while running, a full disk, SIGTERM mid-write, a second instance. The user's config and gallery are
byte-identical after every test here (the autouse fixture `user_files` checks)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.fakes import CountingEmbedder, CountingFaces, FrameList, ScriptedPersons
from helpers.shared import BUILD_MODELS, HAMILTON, REPO, SHARED_MODELS, need

from facewatch import paths
from facewatch.app import build_daemon
from facewatch.capture import FrameSource
from facewatch.cli import main
from facewatch.config import load_config
from facewatch.daemon import Daemon, Loop
from facewatch.detectors.base import Detection
from facewatch.events import EventLog, events_path
from facewatch.identity.gallery import Gallery, load_gallery
from facewatch.identity.matching import CosineMatcher
from facewatch.system.instance import AlreadyRunning, InstanceLock, lock_path
from facewatch.tracking.tracks import Tracker
from facewatch.tracking.trigger import CountTrigger
from facewatch.weights.registry import ModelError

UNPLUG, STALL = "unplug", "stall"
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
# Frames a driver may hand back that are not usable images: none, grey, empty, float, BGRA.
CORRUPT = [None, np.zeros((4, 6), np.uint8), np.zeros((0, 0, 3), np.uint8), np.zeros((4, 6, 3), np.float32),
           np.zeros((4, 6, 4), np.uint8)]


def tree_digest(*roots: Path) -> dict[str, str]:
    """sha256 of every file under `roots`, by path: equal digests mean byte-identical trees."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def user_files(isolated_home):
    """A user config and an enrolled photo in the default places; both must be byte-identical after the test."""
    config = paths.config_dir() / "config.yaml"
    paths.private_dir(config.parent)
    config.write_text("person:\n  model: yolo11n_int8_320.onnx\n")
    owner = paths.private_dir(paths.data_dir() / "reference_faces" / "owner")
    cv2.imwrite(str(owner / "owner.png"), np.full((64, 64, 3), 90, np.uint8))
    before = tree_digest(config.parent, owner)
    yield
    assert tree_digest(config.parent, owner) == before


def good(n: int) -> np.ndarray:
    """A small valid BGR frame whose pixels all equal n, so a test can tell frames apart."""
    return np.full((4, 6, 3), n, np.uint8)


class Device:
    """A fake cv2.VideoCapture that decodes `frames` in order (None = endless good frames), then is unplugged
    (grab fails) or stalls (grab blocks until `unblock` is set). A device with opened=False is busy."""

    def __init__(self, frames: list | None = None, then: str = UNPLUG, opened: bool = True) -> None:
        self.frames = None if frames is None else list(frames)
        self.then = then
        self.opened = opened
        self.decoded = 0
        self.unblock = threading.Event()
        self.released = threading.Event()

    def isOpened(self) -> bool:
        return self.opened

    def grab(self) -> bool:
        time.sleep(0.002)  # a real camera paces the grab loop
        if self.frames is None or self.frames:
            return True
        if self.then == STALL:
            self.unblock.wait(10)
        return False

    def retrieve(self):
        item = good(100 + self.decoded) if self.frames is None else self.frames.pop(0)
        self.decoded += 1
        return item is not None, item

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        self.released.set()


def plugs(*devices: Device | None):
    """Capture factory: the n-th open returns devices[n]; None is a busy camera; afterwards endless devices."""
    queue = list(devices)

    def open_device(source):
        device = queue.pop(0) if queue else Device()
        return device if device is not None else Device(opened=False)
    return open_device


class LossGate:
    """FrameSource's backoff sleep: holds every reconnect until the daemon's State says "camera lost" (or the
    daemon stopped), so the test sees the loss reach the State before the camera comes back."""

    def __init__(self) -> None:
        self.daemon: Daemon | None = None
        self.seen: list[str] = []  # the daemon's status when each reconnect was let through

    def __call__(self, seconds: float) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (self.daemon and self.daemon.state.status in ("camera lost",
                                                                                                 "stopped")):
            time.sleep(0.01)
        self.seen.append(self.daemon.state.status if self.daemon else "no daemon")


class Persons:
    """Person detector stand-in: one person in every frame, and a record of every frame it was given."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def detect(self, frame):
        self.frames.append(frame)
        return [Detection(np.array([0, 0, 4, 4], np.float32), 0.9)]


def watch_live(source, devices: tuple, stop_after: int, tmp_path: Path, monkeypatch, **options) -> tuple:
    """Run a Daemon over a real FrameSource on fake devices until `stop_after` frames were processed.

    Returns (final state, frames the person detector saw, the logged events, the FrameSource, the gate)."""
    monkeypatch.setattr("facewatch.daemon.READ_TIMEOUT_S", 0.1)  # an empty read takes 0.1 s, not 1 s
    gate = LossGate()
    frames = FrameSource(source, capture_factory=plugs(*devices), sleep=gate, reconnect_initial_s=0.01,
                         reconnect_max_s=0.02, **options)
    persons = Persons()
    log = tmp_path / "events.jsonl"
    daemon = Daemon(Loop(source=frames, person=persons, faces=CountingFaces(), gallery=Gallery(),
                         matcher=CosineMatcher(0.4), trigger=CountTrigger(1.0, 30.0, retry_s=1000.0),
                         tracker=Tracker(0.3, 0.2, 2.0), events=EventLog(log), fps=500.0, active_fps=500.0))
    gate.daemon = daemon
    assert daemon.state.status == "starting"
    daemon.loop.on_frame.append(lambda frame, tracks, state: state.frames >= stop_after and daemon.stop())
    final = daemon.run()
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return final, [int(f[0, 0, 0]) for f in persons.frames], events, frames, gate


def camera_events(events: list[dict]) -> list[str]:
    """The camera states the daemon logged, in order."""
    return [e["state"] for e in events if e["event"] == "camera"]


# --- camera and stream faults ----------------------------------------------------------------------------


def test_camera_unplugged_mid_run_is_lost_then_back_and_the_daemon_keeps_watching(tmp_path, monkeypatch):
    first = Device([good(1), good(2), good(3)], then=UNPLUG)
    final, seen, events, source, gate = watch_live(0, (first, None, Device()), 6, tmp_path, monkeypatch)
    assert seen == [1, 2, 3, 100, 101, 102]  # three frames, the cable pulled, one busy retry, the camera back
    assert camera_events(events) == ["camera lost", "watching"]
    assert first.released.is_set() and gate.seen == ["camera lost", "camera lost"]  # the State showed the loss
    assert (final.status, final.frames, final.people) == ("stopped", 6, 1)


def test_camera_busy_at_start_is_lost_until_it_frees_up(tmp_path, monkeypatch):
    final, seen, events, source, gate = watch_live(0, (None, None, Device()), 3, tmp_path, monkeypatch)
    assert seen == [100, 101, 102]
    assert camera_events(events) == ["camera lost", "watching"]  # from "starting" straight to "camera lost"
    assert gate.seen == ["camera lost", "camera lost"]
    assert (final.status, final.frames) == ("stopped", 3)


def test_a_stalled_stream_is_lost_after_the_stall_timeout_then_reconnects(tmp_path, monkeypatch):
    stuck = Device([good(1), good(2)], then=STALL)
    try:
        final, seen, events, source, gate = watch_live("rtsp://cam.local/live", (stuck, Device()), 4, tmp_path,
                                                       monkeypatch, stall_timeout_s=0.3)
    finally:
        stuck.unblock.set()  # the hung grab returns; its retired thread lets the device go
    assert seen == [1, 2, 100, 101]
    assert camera_events(events) == ["camera lost", "watching"]
    assert stuck.released.wait(2) and final.status == "stopped" and gate.seen == ["camera lost"]


def test_corrupt_frames_never_reach_the_daemon(tmp_path, monkeypatch):
    device = Device([good(1), *CORRUPT, good(2), *CORRUPT, good(3)])
    final, seen, events, source, gate = watch_live(0, (device,), 3, tmp_path, monkeypatch)
    assert seen == [1, 2, 3] and source.corrupt_frames == 2 * len(CORRUPT)
    assert camera_events(events) == [] and final.status == "stopped"  # corrupt frames are not a lost camera


# --- a model file deleted while running --------------------------------------------------------------------


def test_model_deleted_while_running_keeps_the_daemon_and_fails_the_next_start(tmp_path, monkeypatch, capsys,
                                                                                face_pipeline):
    clip = need(HAMILTON)
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(SHARED_MODELS / "yolo11n_int8_320.onnx", models)
    # the FaceNet weights stay in the build dir the face_pipeline fixture filled; the YOLO copy is ours to delete
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", os.pathsep.join([str(models), str(BUILD_MODELS)]))
    daemon = build_daemon(load_config(), str(clip), dry_run=True)
    yolo = models / "yolo11n_int8_320.onnx"
    daemon.loop.on_frame.append(lambda frame, tracks, state: state.frames == 3 and yolo.unlink())
    passes_after = []
    daemon.loop.on_face_pass.append(lambda t, found: yolo.exists() or passes_after.append(t))
    final = daemon.run()
    assert not yolo.exists()
    assert final.status == "ended" and final.frames > 20  # "ended": the replay ran to the end of the clip
    assert passes_after  # MTCNN and FaceNet were in memory too
    with pytest.raises(ModelError, match="model file yolo11n_int8_320.onnx not found"):
        build_daemon(load_config(), str(clip), dry_run=True)
    assert main(["run", "--source", str(clip)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"facewatch: error: model file yolo11n_int8_320.onnx not found (looked in: {models}, ")
    assert "Traceback" not in err
    # A damaged copy instead of a missing one: named as corrupt, with where to get it again.
    yolo.write_bytes((SHARED_MODELS / "yolo11n_int8_320.onnx").read_bytes()[:100_000])
    assert main(["run", "--source", str(clip)]) == 2
    assert f"facewatch: error: {yolo} is corrupt or not the expected file" in capsys.readouterr().err


# --- disk full ---------------------------------------------------------------------------------------------


def test_disk_full_writing_the_event_log_warns_once_and_the_daemon_keeps_running(tmp_path, monkeypatch, caplog):
    opened = []

    class FullDisk:
        """The event log on a disk with room for two lines: every later write raises ENOSPC."""

        room = 2

        def __init__(self, path: Path) -> None:
            self.file = open(path, "a", encoding="utf-8")
            opened.append(path)

        def write(self, text: str) -> int:
            if FullDisk.room == 0:
                raise ENOSPC
            FullDisk.room -= 1
            return self.file.write(text)

        def flush(self) -> None:
            self.file.flush()

        def close(self) -> None:
            self.file.close()

    monkeypatch.setattr("facewatch.events.open_private_append", FullDisk)
    log = tmp_path / "events.jsonl"
    counts = [1, 2] * 10  # the count changes on every frame; the face pass runs on each (no cooldown)
    daemon = Daemon(Loop(source=FrameList(len(counts), 4.0), person=ScriptedPersons(counts), faces=CountingFaces(),
                         gallery=Gallery(), matcher=CosineMatcher(0.4), trigger=CountTrigger(0.0, 0.0, 1000.0),
                         tracker=Tracker(0.3, 0.2, 2.0), events=EventLog(log), fps=4.0, active_fps=4.0))
    final = daemon.run()
    assert (final.status, final.frames, final.face_passes, final.log_failed) == ("ended", 20, 20, True)
    assert daemon.loop.events.last["event"] == "ended"  # kept in memory for the tray
    lines = log.read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [0, 1]  # what fitted is intact
    warnings = [r.getMessage() for r in caplog.records if r.name == "facewatch.events"]
    assert warnings == [f"event log {log} not writable ([Errno 28] No space left on device); "
                        f"events are kept in memory only"]
    # 21 events (20 face passes, "ended"): one open served the first three, each later event tried anew, silently
    assert len(opened) == 1 + 18


class FillsUp:
    """write_private's temp file on a disk that fills up halfway through the data."""

    def __init__(self, file) -> None:
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.file.close()

    def write(self, data: bytes) -> int:
        self.file.write(data[: len(data) // 2])
        raise ENOSPC


def test_disk_full_writing_the_gallery_cache_keeps_the_old_cache_and_the_gallery(tmp_path, monkeypatch, caplog):
    root = tmp_path / "faces"
    for name, value in (("ann", 40), ("bob", 80)):
        paths.private_dir(root / name)
        cv2.imwrite(str(root / name / "1.png"), np.full((40, 40, 3), value, np.uint8))
    cache = tmp_path / "cache" / "gallery-casia-webface.json"
    load_gallery(root, CountingEmbedder(), cache, "casia-webface")
    old = cache.read_bytes()
    cv2.imwrite(str(root / "bob" / "2.png"), np.full((40, 40, 3), 120, np.uint8))  # the cache must change
    real_fdopen = os.fdopen
    monkeypatch.setattr(paths.os, "fdopen", lambda fd, mode: FillsUp(real_fdopen(fd, mode)))
    gallery = load_gallery(root, CountingEmbedder(), cache, "casia-webface")
    assert gallery.names == ["ann", "bob", "bob"] and gallery.embeddings.shape == (3, 512)
    assert cache.read_bytes() == old and os.listdir(cache.parent) == [cache.name]  # no half-written temp left
    warnings = [r.getMessage() for r in caplog.records if r.name == "facewatch.identity.gallery"]
    assert warnings == [f"gallery cache {cache} not updated (No space left on device); "
                        f"its photos are embedded again at the next start"]


# --- SIGTERM in the middle of a write ----------------------------------------------------------------------


def python(code: str, *args: str, **popen) -> subprocess.Popen:
    """Start `python -c code args` with the repo importable and the test's FACEWATCH_HOME."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


# Loads the gallery like `facewatch run` does, but write_private's temp file hangs after half the data.
HANG_MID_WRITE = r"""
import os, sys, time
from pathlib import Path
import numpy as np
from facewatch import paths
from facewatch.identity.gallery import load_gallery

class HalfThenHang:
    def __init__(self, file): self.file = file
    def __enter__(self): return self
    def __exit__(self, *exc): self.file.close()
    def write(self, data):
        self.file.write(data[: len(data) // 2]); self.file.flush()
        print("mid-write", flush=True)
        time.sleep(60)

real_fdopen = os.fdopen
paths.os.fdopen = lambda fd, mode: HalfThenHang(real_fdopen(fd, mode))
def embed(image):
    vec = np.zeros((1, 512), np.float32); vec[0, int(image.mean()) % 512] = 1.0
    return vec
load_gallery(Path(sys.argv[1]), embed, Path(sys.argv[2]), "casia-webface")
"""


def test_sigterm_mid_write_leaves_the_old_gallery_cache_whole(tmp_path):
    root, cache = tmp_path / "faces", paths.data_dir() / "gallery-casia-webface.json"
    for name, value in (("ann", 40), ("bob", 80)):
        paths.private_dir(root / name)
        cv2.imwrite(str(root / name / "1.png"), np.full((40, 40, 3), value, np.uint8))
    load_gallery(root, CountingEmbedder(), cache, "casia-webface")
    old = cache.read_bytes()
    cv2.imwrite(str(root / "bob" / "2.png"), np.full((40, 40, 3), 120, np.uint8))
    child = python(HANG_MID_WRITE, str(root), str(cache))
    assert child.stdout.readline() == "mid-write\n"
    child.send_signal(signal.SIGTERM)
    assert child.wait(10) == -signal.SIGTERM
    assert cache.read_bytes() == old  # the old cache, whole; the half-written data is in a temp file
    [partial] = cache.parent.glob(".gallery-casia-webface.json.*.tmp")
    assert os.stat(partial).st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        json.loads(partial.read_text())  # half a document: it never replaced the cache
    gallery = load_gallery(root, CountingEmbedder(), cache, "casia-webface")
    assert gallery.names == ["ann", "bob", "bob"] and len(json.loads(cache.read_text())["entries"]) == 3


# Rewrites one file with two large JSON documents in turn, forever.
REWRITE_FOREVER = r"""
import json, sys
from pathlib import Path
from facewatch.paths import write_private
docs = [json.dumps({"n": n, "pad": str(n) * 4_000_000}).encode() for n in (0, 1)]
target = Path(sys.argv[1])
write_private(target, docs[0])
print("writing", flush=True)
n = 1
while True:
    write_private(target, docs[n % 2]); n += 1
"""


def test_sigterm_at_random_moments_never_truncates_the_file(tmp_path):
    target = tmp_path / "gallery-casia-webface.json"
    rng = random.Random(7)
    for _ in range(4):
        child = python(REWRITE_FOREVER, str(target))
        assert child.stdout.readline() == "writing\n"
        time.sleep(rng.uniform(0.02, 0.3))
        child.send_signal(signal.SIGTERM)
        child.wait(10)
        doc = json.loads(target.read_text())  # always complete JSON: one of the two documents
        assert doc["pad"] == str(doc["n"]) * 4_000_000
    assert list(tmp_path.glob(".*.tmp"))  # the kills did land mid-write (their temp files are left behind)


# --- a second instance, and SIGTERM / SIGKILL of the first --------------------------------------------------

# `facewatch run` with build_daemon replaced by a loop over an endless stand-in camera whose person count
# flickers, so the face pass and the event log are written on every frame (every 5 ms).
STANDIN_RUN = r"""
import sys, time
import numpy as np
import facewatch.app as app
from facewatch.capture import FramePacket
from facewatch.cli import main
from facewatch.daemon import Daemon, Loop
from facewatch.detectors.base import Detection
from facewatch.events import EventLog, events_path
from facewatch.identity.gallery import Gallery
from facewatch.identity.matching import CosineMatcher
from facewatch.tracking.tracks import Tracker
from facewatch.tracking.trigger import CountTrigger

class Endless:
    state, target_fps, index = "running", None, 0
    def read(self, timeout):
        time.sleep(0.005)
        self.index += 1
        return FramePacket(np.zeros((8, 8, 3), np.uint8), self.index, self.index * 0.005)
    def release(self): pass
    def reopen(self): pass
    def close(self): pass

class Flicker:
    calls = 0
    def detect(self, frame):
        self.calls += 1
        return [Detection(np.array([0, 0, 4, 4], np.float32), 0.9)] * (1 + self.calls % 2)

class NoFaces:
    def identify(self, image, gallery, matcher): return []

app.build_daemon = lambda config, source, **options: Daemon(Loop(
    source=Endless(), person=Flicker(), faces=NoFaces(), gallery=Gallery(), matcher=CosineMatcher(0.4),
    trigger=CountTrigger(0.0, 0.0, 1000.0), tracker=Tracker(0.3, 0.2, 2.0), events=EventLog(events_path()),
    fps=200.0, active_fps=200.0))
sys.exit(main(["run", "--source", "clip.mp4"]))
"""


def start_watching() -> subprocess.Popen:
    """Start the stand-in `facewatch run`; return once it holds the lock and has logged a few events."""
    child = python(STANDIN_RUN)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.poll() is None:
        log = events_path()
        if lock_path().is_file() and lock_path().read_text().strip() == str(child.pid) \
                and log.is_file() and log.read_text().count("\n") >= 5:
            return child
        time.sleep(0.05)
    child.kill()
    pytest.fail(f"the stand-in daemon did not start: {child.communicate()[1]}")


def test_second_run_is_refused_sigterm_stops_cleanly_and_a_crash_leaves_no_stale_lock():
    first = start_watching()
    try:
        second = subprocess.run([sys.executable, "-m", "facewatch", "run", "--source", "clip.mp4"],
                                env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1] == f"facewatch is already running (pid {first.pid})"
        assert first.poll() is None  # the first one is unaffected
        first.send_signal(signal.SIGTERM)  # lands while the log is written every 5 ms
        assert first.wait(10) == 0
    finally:
        first.kill()
    assert "stopped after" in first.stderr.read()
    text = events_path().read_text()
    assert text.endswith("\n") and all(json.loads(line)["event"] for line in text.splitlines())
    assert os.stat(events_path()).st_mode & 0o777 == 0o600

    crashed = start_watching()
    crashed.kill()  # SIGKILL: no cleanup runs at all
    crashed.wait(10)
    assert lock_path().read_text().strip() == str(crashed.pid)  # the file stays; the OS dropped its lock
    with InstanceLock():
        assert lock_path().read_text() == f"{os.getpid()}\n"
        with pytest.raises(AlreadyRunning, match=f"facewatch is already running \\(pid {os.getpid()}\\)"):
            InstanceLock().acquire()
    InstanceLock().acquire().release()  # released on leaving the block


def test_an_unusable_lock_file_warns_and_runs_unguarded(caplog):
    state = paths.state_dir()
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("a file where the state dir should be")
    with InstanceLock():
        pass
    assert [r.getMessage() for r in caplog.records if r.name == "facewatch.system.instance"] == [
        f"cannot create the lock file {state / 'facewatch.lock'} (Not a directory); "
        f"not guarding against a second instance"]
