"""Bench the liveness judge: how often real faces pass, and how often a photo of the owner passes, over many windows.

Usage: .venv/bin/python bench/liveness.py [--window-s 2] [--samples 10] [--threshold 0.046] [--fps 8] [--seconds 10]
Real footage: Lin-Manuel Miranda's close-up in short_hamilton_clip.mp4 and the people walking in video.mp4 (the
clip's other scenes are too short for a whole window). Spoofs, written to a temp dir and deleted afterwards: a
Hamilton frame repeated exactly, and lin-manuel-miranda.png printed on a card in a room with camera noise, held
still or moved by hand (translation, roll, tilt, scale, brightness), at four sizes. Each window replays what the
daemon does: a face pass at one frame, then LivenessMonitor's detector-only samples on the frames a camera at
--fps would deliver.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from common import SHARED

EXAMPLES = SHARED / "data" / "face_recognition_examples" / "examples"
HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"
LIN_PHOTO = EXAMPLES / "lin-manuel-miranda.png"
VIDEO = SHARED / "data" / "facenet_pytorch_samples" / "examples" / "video.mp4"
# Lin-Manuel Miranda's close-up in the Hamilton clip (scene cuts as in tests/test_daemon.py).
LIN_CLOSE = range(82, 211)
FOCAL_PX = 600.0  # a webcam's focal length in pixels at 640x480 (about 56 degrees across)


# ------------------------------------------------------------------------------------------------- spoof videos


def _room(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A muted, smoothly varying background (a wall, a shelf) with some fine texture, float BGR."""
    w, h = size
    coarse = rng.uniform(70, 170, (5, 7, 1)) + rng.uniform(-20, 20, (5, 7, 3))
    room = cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(room + rng.normal(0, 4, (h, w, 3)).astype(np.float32), 0, 255)


def _print_card(photo_bgr: np.ndarray, width: int) -> np.ndarray:
    """The photo printed `width` pixels wide with a white margin, float BGR."""
    h, w = photo_bgr.shape[:2]
    image = cv2.resize(photo_bgr, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    margin = max(4, width // 25)
    card = cv2.copyMakeBorder(image, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(235, 235, 235))
    return card.astype(np.float32)


def _card_homography(card_shape: tuple[int, ...], size: tuple[int, int], pose: dict[str, float]) -> np.ndarray:
    """Where a flat card lands in the image when held at `pose` (shift px, roll/pitch/yaw deg, scale) before a
    pinhole camera: the 3x3 homography from card pixels to image pixels."""
    ch, cw = card_shape[:2]
    corners = np.array([[-cw, -ch, 0], [cw, -ch, 0], [cw, ch, 0], [-cw, ch, 0]], float) / 2 * pose["scale"]
    pitch, yaw, roll = np.radians([pose["pitch"], pose["yaw"], pose["roll"]])
    rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rz = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    points = corners @ (rz @ ry @ rx).T
    depth = points[:, 2] + FOCAL_PX  # the card's centre at one focal length: its pixels keep their size
    x = FOCAL_PX * points[:, 0] / depth + size[0] / 2 + pose["tx"]
    y = FOCAL_PX * points[:, 1] / depth + size[1] / 2 + pose["ty"]
    src = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
    return cv2.getPerspectiveTransform(src, np.float32(np.column_stack([x, y])))


STILL_POSE = {"tx": 0.0, "ty": 0.0, "roll": 3.0, "pitch": 5.0, "yaw": -4.0, "scale": 1.0, "gain": 1.0}
# How far a hand moves a held print (amplitude of slow waves of 0.15-1 Hz): px, degrees, scale and light factors.
HAND = {"tx": 50.0, "ty": 30.0, "roll": 10.0, "pitch": 18.0, "yaw": 18.0, "scale": 0.12, "gain": 0.15}


def spoof_frames(photo_bgr: np.ndarray, moved: bool, seconds: float, fps: float = 30.0,
                 size: tuple[int, int] = (640, 480), card_width: int = 260, noise: float = 2.5,
                 seed: int = 0) -> Iterator[np.ndarray]:
    """Frames of a webcam filming a print of `photo_bgr` held up in a room: still, or moved by hand (every pose
    parameter a sum of two slow waves, plus brightness), with Gaussian camera noise; BGR uint8, deterministic."""
    rng = np.random.default_rng(seed)
    room = _room(size, rng)
    card = _print_card(photo_bgr, card_width)
    opaque = np.ones(card.shape[:2], np.float32)
    waves = {k: (rng.uniform(0.15, 0.5), rng.uniform(0.5, 1.0), *rng.uniform(0, 2 * math.pi, 2)) for k in HAND}
    for i in range(round(seconds * fps)):
        t = i / fps
        pose = dict(STILL_POSE)
        if moved:
            for key, (f1, f2, p1, p2) in waves.items():
                swing = 0.7 * math.sin(2 * math.pi * f1 * t + p1) + 0.3 * math.sin(2 * math.pi * f2 * t + p2)
                pose[key] = (1.0 if key in ("scale", "gain") else 0.0) + HAND[key] * swing
        homography = _card_homography(card.shape, size, pose)
        image = cv2.warpPerspective(card, homography, size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpPerspective(opaque, homography, size, flags=cv2.INTER_LINEAR)[..., None]
        frame = room * (1 - alpha) + image * alpha * pose["gain"] + rng.normal(0, noise, room.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def repeated_frame(clip: Path, index: int, seconds: float) -> tuple[Iterator[np.ndarray], float]:
    """Frame `index` of a clip repeated for `seconds` at the clip's frame rate (a paused video), and that rate."""
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"{clip}: cannot read frame {index}")
    return (frame for _ in range(round(seconds * fps))), fps


def write_video(path: Path, frames: Iterator[np.ndarray], fps: float) -> Path:
    """Encode frames into an mp4 file (the codec's artefacts are part of what a replay sees)."""
    writer = None
    for frame in frames:
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
        writer.write(frame)
    if writer is None:
        raise ValueError(f"{path}: no frames to write")
    writer.release()
    return path


# ------------------------------------------------------------------------------------------------- measurement


def detect_every_frame(clip: Path, detector, frames: range | None = None) -> tuple[list[list], float]:
    """Run the face detector on every frame of the clip (or of `frames` of it): faces per frame, and the fps."""
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    first = frames.start if frames is not None else 0
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    per_frame = []
    while frames is None or first + len(per_frame) < frames.stop:
        ok, frame = cap.read()
        if not ok:
            break
        per_frame.append(detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
    cap.release()
    return per_frame, fps


def face_tracks(per_frame: list[list], min_iou: float = 0.3, max_gap: int = 3) -> list[dict[int, object]]:
    """Chain each frame's faces into tracks by box overlap with the track's last face: frame index -> Face."""
    from facewatch.tracking.iou import iou_matrix

    tracks: list[dict[int, object]] = []
    for i, faces in enumerate(per_frame):
        for face in faces:
            open_tracks = [tr for tr in tracks if i - max(tr) <= max_gap and i not in tr]
            overlaps = [iou_matrix([face.box], [tr[max(tr)].box])[0, 0] for tr in open_tracks]
            if overlaps and max(overlaps) >= min_iou:
                open_tracks[int(np.argmax(overlaps))][i] = face
            else:
                tracks.append({i: face})
    return tracks


def person_box(face) -> np.ndarray:
    """A head-and-shoulders box around a face, standing in for the YOLO person box the daemon would track."""
    x1, y1, x2, y2 = face.box
    w, h = x2 - x1, y2 - y1
    return np.array([x1 - w, y1 - h / 2, x2 + w, y2 + 2.5 * h], np.float32)


class ReplayedFaces:
    """A face detector that returns the faces already found on the frame the bench is at (set `index`)."""

    def __init__(self, per_frame: list[list]) -> None:
        self.per_frame = per_frame
        self.index = 0

    def detect(self, image_rgb: np.ndarray) -> list:
        """The faces of frame `index`."""
        return self.per_frame[self.index]


def run_windows(per_frame: list[list], clip_fps: float, track: dict[int, object], settings, fps: float,
                step: int) -> list:
    """Verdicts of one check started at every `step`-th frame of the track: the face pass's face first, then the
    monitor's samples on a camera grid of `fps` after it. Windows that outlast the track are left out."""
    from facewatch.identity.liveness import LivenessMonitor
    from facewatch.identity.matching import Match
    from facewatch.identity.pipeline import Identified
    from facewatch.tracking.tracks import Track

    detector = ReplayedFaces(per_frame)
    last = max(track)
    reach = settings.window_s * (1 + 2 / (settings.samples - 1))  # one sample interval past the check deadline
    verdicts = []
    blank = np.zeros((1, 1, 3), np.uint8)
    for start in sorted(track)[::step]:
        if (last - start) / clip_fps < reach:
            break
        t0 = start / clip_fps
        face = track[start]
        person = Track(1, person_box(face), "owner", 1.0, t0, verified_at=t0)
        monitor = LivenessMonitor(settings, detector)
        monitor.start([person], [Identified(face, Match("owner", 1.0))], t0)
        k = 0
        while monitor.pending:
            k += 1
            t = t0 + k / fps
            detector.index = min(round(t * clip_fps), len(per_frame) - 1)
            if detector.index in track:
                person.box = person_box(track[detector.index])
            for outcome in monitor.step(blank, t):
                verdicts.append(outcome.verdict)
    return verdicts


def summarise(name: str, kind: str, eyes_px: float, verdicts: list) -> dict:
    """One table row: face size, the windows, the share judged live, spoof and undecided, the motion measured."""
    n = len(verdicts)
    motion = sorted(v.motion for v in verdicts if v.motion is not None)
    share = {d: 100.0 * sum(v.decision == d for v in verdicts) / n if n else float("nan")
             for d in ("live", "spoof", "undecided")}
    pick = (lambda q: motion[min(len(motion) - 1, int(q * len(motion)))]) if motion else (lambda q: float("nan"))
    return {"footage": name, "truth": kind, "eyes px": round(eyes_px), "windows": n, "live %": share["live"],
            "spoof %": share["spoof"], "undecided %": share["undecided"], "motion min": pick(0.0), "p5": pick(0.05),
            "median": statistics.median(motion) if motion else float("nan"), "p95": pick(0.95), "max": pick(1.0)}


def main() -> None:
    """Detect faces on every frame of the real clips and the spoofs, replay the checks, print the table."""
    import torch

    from facewatch.config import load_config
    from facewatch.detectors.face import MtcnnFaceDetector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = load_config().liveness
    parser.add_argument("--window-s", type=float, default=defaults.window_s)
    parser.add_argument("--samples", type=int, default=defaults.samples)
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--fps", type=float, default=load_config().camera.active_fps,
                        help="camera rate during a check (the daemon's active fps)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each spoof video")
    parser.add_argument("--step", type=int, default=1, help="start a window at every STEP-th frame")
    args = parser.parse_args()
    for path in (HAMILTON, LIN_PHOTO, VIDEO):
        if not path.exists():
            sys.exit(f"{path} is absent: run this beside the ../shared folder")
    torch.set_num_threads(1)  # results do not depend on it; on a busy 2-core machine one thread is faster
    settings = replace(defaults, enabled=True, window_s=args.window_s, samples=args.samples, threshold=args.threshold)
    detector = MtcnnFaceDetector()
    photo = cv2.imread(str(LIN_PHOTO))
    rows = []

    def measure(name: str, kind: str, clip: Path, frames: range | None = None) -> None:
        """Add the row of one clip: every face track of real footage; the printed face (longest track) of a spoof,
        not the odd false detection in its background."""
        per_frame, clip_fps = detect_every_frame(clip, detector, frames)
        tracks = face_tracks(per_frame)
        if kind == "spoof":
            tracks = [max(tracks, key=len)]
        verdicts = []
        for track in tracks:
            verdicts += run_windows(per_frame, clip_fps, track, settings, args.fps, args.step)
        eyes = [float(np.linalg.norm(f.landmarks[1] - f.landmarks[0])) for track in tracks for f in track.values()]
        rows.append(summarise(name, kind, statistics.median(eyes), verdicts))
        print(f"  {name}: {len(verdicts)} windows", file=sys.stderr)

    measure("Hamilton: Lin-Manuel close-up", "live", HAMILTON, LIN_CLOSE)
    measure("video.mp4: people walking", "live", VIDEO)
    with tempfile.TemporaryDirectory() as tmp:
        frames, clip_fps = repeated_frame(HAMILTON, 150, args.seconds)
        measure("Hamilton frame 150 repeated", "spoof", write_video(Path(tmp) / "still.mp4", frames, clip_fps))
        for moved in (False, True):
            for width in (110, 160, 260, 360):
                clip = Path(tmp) / f"print-{moved}-{width}.mp4"
                write_video(clip, spoof_frames(photo, moved, args.seconds, card_width=width, seed=width), 30.0)
                name = f"photo {width} px wide, {'moved by hand' if moved else 'held still'}"
                measure(name, "spoof", clip)
    print(f"liveness: window {settings.window_s:g} s, {settings.samples} samples, threshold {settings.threshold:g}, "
          f"camera {args.fps:g} fps during a check; windows start every {args.step} frame(s) and overlap")
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(f"{v:.1f}" if k.endswith("%") else f"{v:.3f}" if isinstance(v, float) else str(v)
                                for k, v in row.items()) + " |")
    live = [r for r in rows if r["truth"] == "live"]
    spoof = [r for r in rows if r["truth"] == "spoof"]
    print(f"real faces accepted as live: {_pooled(live):.1f} % of {sum(r['windows'] for r in live)} windows; "
          f"spoofs accepted as live: {_pooled(spoof):.1f} % of {sum(r['windows'] for r in spoof)} windows")


def _pooled(rows: list[dict]) -> float:
    """The live share over all windows of these rows."""
    total = sum(r["windows"] for r in rows)
    return sum(r["live %"] * r["windows"] for r in rows) / total if total else float("nan")


if __name__ == "__main__":
    main()
