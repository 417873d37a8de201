"""Liveness of a face named as the owner: the natural motion of a live face versus the rigid motion of a photo.

A flat photo held up to the camera, however it is moved, turned or tilted, maps its five landmarks (eyes, nose,
mouth corners) by one plane transform, close to an affine map at face size, so their affine-invariant shape
stays put: only landmark noise moves it. A live face turns (the nose shifts against the eyes and mouth: parallax)
and changes expression, so that shape changes. `judge` measures the change over a few seconds of samples; it is
pure and reads no clock. `LivenessMonitor` collects the samples for the daemon with the face detector alone.
Weak against a video of the owner played on a screen, a bent print and masks: see docs/security.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from facewatch.config import Liveness
from facewatch.detectors.base import Face, FaceDetector, to_rgb
from facewatch.identity.pipeline import Identified
from facewatch.tracking.iou import containment_matrix
from facewatch.tracking.tracks import MIN_FACE_INSIDE, UNKNOWN, Track

MIN_SINE = 0.05  # eyes and mouth nearer a straight line than this (sine of their angle) give no usable shape
_EPS = 1e-6  # frame times within this of a due time count as due (float sums are not exact)

Decision = Literal["live", "spoof", "undecided"]


@dataclass(frozen=True)
class Sample:
    """One sighting of a face: time (s), box (x1, y1, x2, y2), and 5 landmarks (eyes, nose, mouth corners)."""

    t: float
    box: np.ndarray
    landmarks: np.ndarray


@dataclass(frozen=True)
class Verdict:
    """The judge's decision, the non-rigid motion it measured (None: too few samples) and the usable samples."""

    decision: Decision
    motion: float | None
    samples: int


def face_shape(landmarks: np.ndarray) -> np.ndarray | None:
    """Nose and left mouth corner in the frame of the two eyes and the mouth centre: 4 numbers no affine map
    of the image changes (a photo moved, scaled, rotated or sheared keeps them); None for degenerate landmarks."""
    left_eye, right_eye, nose, mouth_left, mouth_right = np.asarray(landmarks, np.float64).reshape(5, 2)
    basis = np.column_stack([right_eye - left_eye, (mouth_left + mouth_right) / 2 - left_eye])
    lengths = np.linalg.norm(basis, axis=0).prod()
    if lengths == 0 or abs(np.linalg.det(basis)) < MIN_SINE * lengths:
        return None
    return np.linalg.solve(basis, np.column_stack([nose - left_eye, mouth_left - left_eye])).T.ravel()


def nonrigid_motion(samples: Sequence[Sample]) -> tuple[float | None, int]:
    """How much the face's shape varied over the samples (root of the summed variances of face_shape), and how
    many samples had a usable shape; (None, n) when fewer than two had."""
    shapes = [s for s in (face_shape(sample.landmarks) for sample in samples) if s is not None]
    if len(shapes) < 2:
        return None, len(shapes)
    return float(np.sqrt(np.stack(shapes).var(axis=0).sum())), len(shapes)


def judge(samples: Sequence[Sample], min_samples: int, threshold: float) -> Verdict:
    """Live when the non-rigid motion over the samples reaches `threshold`, spoof below it, undecided when
    fewer than `min_samples` samples have a usable shape."""
    motion, usable = nonrigid_motion(samples)
    if usable < max(min_samples, 2):
        return Verdict("undecided", None, usable)
    return Verdict("live" if motion >= threshold else "spoof", motion, usable)


def pick_face(faces: Sequence[Face], region: np.ndarray) -> Face | None:
    """The largest face lying mostly inside `region` (>= MIN_FACE_INSIDE of it), or None: in a person's box their
    own face is the largest; a false detection (a hand, a pattern) or someone behind them is smaller."""
    inside = containment_matrix([f.box for f in faces], [region])[:, 0] if faces else []
    candidates = [f for f, share in zip(faces, inside) if share >= MIN_FACE_INSIDE]
    return max(candidates, key=lambda f: float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])), default=None)


@dataclass
class _Check:
    """One provisional owner being checked: the track, the name the face pass gave it, when, and the samples."""

    track: Track
    name: str
    started: float
    samples: list[Sample]


@dataclass(frozen=True)
class Outcome:
    """A finished check: the track, the owner name it had been given, and the verdict (already applied)."""

    track: Track
    name: str
    verdict: Verdict


class LivenessMonitor:
    """Keeps an owner's name on a track only if that face moves like a live one, judged over window_s.

    start() opens a check for each track a face pass just named an owner; that face is the first sample.
    step() runs the face detector alone (no FaceNet) when a check's next sample is due, one every
    window_s / (samples - 1), and judges a check once it has `samples` samples or its window plus one sample
    interval is over. spoof: the track becomes "unknown"; undecided (the face was not found often enough):
    unverified again, so the face pass retries; live: the name stays. Times are passed in; no clock is read.
    """

    def __init__(self, settings: Liveness, detector: FaceDetector) -> None:
        """settings: the config's liveness section; detector: the face pipeline's MTCNN."""
        if settings.samples < 3:
            raise ValueError(f"liveness.samples must be >= 3 (a shape spread needs several), got {settings.samples}")
        self.settings = settings
        self.detector = detector
        self.interval = settings.window_s / (settings.samples - 1)
        self._checks: dict[int, _Check] = {}

    @property
    def pending(self) -> bool:
        """True while some check still collects samples (the daemon keeps its active fps meanwhile)."""
        return bool(self._checks)

    def start(self, tracks: Sequence[Track], found: Sequence[Identified], now: float) -> None:
        """After a face pass at `now`: check every track it named an owner; a track named "unknown" drops its
        check; a track named the same owner again keeps its running check (a pass must not restart it)."""
        for track in tracks:
            if track.verified_at != now:
                continue
            name = track.identity
            check = self._checks.get(track.id)
            if name in (None, UNKNOWN):
                self._checks.pop(track.id, None)
            elif check is None or check.name != name:
                face = pick_face([f.face for f in found if f.match.name == name], track.box)
                if face is not None:
                    self._checks[track.id] = _Check(track, name, now, [Sample(now, face.box, face.landmarks)])

    def step(self, frame_bgr: np.ndarray, now: float) -> list[Outcome]:
        """Take the samples due at `now` from this frame and judge the checks that are complete or out of time."""
        due = [c for c in self._checks.values() if now >= c.started + len(c.samples) * self.interval - _EPS]
        if due:
            faces = self.detector.detect(to_rgb(frame_bgr))
            for check in due:
                face = pick_face(faces, check.track.box)
                if face is not None:
                    check.samples.append(Sample(now, face.box, face.landmarks))
        outcomes = []
        for key, check in list(self._checks.items()):
            complete = len(check.samples) >= self.settings.samples
            if complete or now >= check.started + self.settings.window_s + self.interval - _EPS:
                del self._checks[key]
                verdict = judge(check.samples, self.settings.samples, self.settings.threshold)
                _apply(check, verdict)
                outcomes.append(Outcome(check.track, check.name, verdict))
        return outcomes


def _apply(check: _Check, verdict: Verdict) -> None:
    """What a verdict does to the track, unless a later face pass already renamed it."""
    track = check.track
    if track.identity != check.name:
        return
    if verdict.decision == "spoof":
        track.identity = UNKNOWN
    elif verdict.decision == "undecided":
        track.identity, track.box_at_verify = None, None
