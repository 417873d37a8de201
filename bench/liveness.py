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
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from common import SHARED
from helpers.media import write_video
from helpers.spoof import spoof_frames

EXAMPLES = SHARED / "data" / "face_recognition_examples" / "examples"
HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"
LIN_PHOTO = EXAMPLES / "lin-manuel-miranda.png"
VIDEO = SHARED / "data" / "facenet_pytorch_samples" / "examples" / "video.mp4"
# Lin-Manuel Miranda's close-up in the Hamilton clip (scene cuts as in tests/test_daemon.py).
LIN_CLOSE = range(82, 211)


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
