"""Liveness: the judge on synthetic landmark series, the monitor's sampling, and replays of Lin-Manuel Miranda's
real scene versus videos of his photo held still and moved by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers.media import write_segment
from helpers.replay import named_after_a_second_look, replay
from helpers.shared import EXAMPLES, HAMILTON, LIN_CLOSE, need

from facewatch.config import ConfigError, Liveness, load_config
from facewatch.detectors.base import Detection, Face
from facewatch.identity.liveness import (
    LivenessMonitor,
    Sample,
    face_shape,
    judge,
    nonrigid_motion,
    pick_face,
)
from facewatch.identity.matching import Match
from facewatch.identity.pipeline import Identified
from facewatch.tracking.tracks import Track, Tracker

# A frontal face: left eye, right eye, nose, mouth left, mouth right (pixels). In the frame of the eyes and the
# mouth centre, its nose sits at (0.25, 0.5) and its left mouth corner at (-0.375, 1.0).
FACE = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], np.float64)
SETTINGS = Liveness(enabled=True, window_s=2.0, samples=6, threshold=0.046)


def affine(points: np.ndarray, angle_deg: float, scale: float, shift: tuple, shear: float = 0.0) -> np.ndarray:
    """Points moved the way a flat photo moves in front of a camera (rotation, scale, shear, shift)."""
    a = math.radians(angle_deg)
    m = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) @ np.array([[1, shear], [0, 1]])
    return points @ m.T + np.asarray(shift)


def series(landmark_sets: list[np.ndarray], dt: float = 0.4) -> list[Sample]:
    """Samples of one face, dt seconds apart, with a box around each set of landmarks."""
    return [Sample(i * dt, np.r_[lm.min(0) - 20, lm.max(0) + 20], lm) for i, lm in enumerate(landmark_sets)]


# Six poses of a held photo: moved, turned, scaled and sheared (a tilted print seen at an angle).
POSES = [(0, 1.0, (0, 0), 0.0), (8, 1.1, (40, -10), 0.05), (-6, 0.9, (-30, 25), -0.08),
         (12, 1.2, (15, 30), 0.1), (-10, 0.95, (60, 5), 0.0), (3, 1.05, (-50, -20), -0.04)]


def test_face_shape_is_the_nose_and_mouth_corner_in_the_eye_mouth_frame():
    np.testing.assert_allclose(face_shape(FACE), [0.25, 0.5, -0.375, 1.0])
    for pose in POSES:
        np.testing.assert_allclose(face_shape(affine(FACE, *pose)), [0.25, 0.5, -0.375, 1.0], atol=1e-12)


def test_degenerate_landmarks_have_no_shape():
    assert face_shape(np.array([[0, 0], [10, 0], [20, 0], [30, 0], [40, 0]])) is None  # all in a line
    assert face_shape(np.zeros((5, 2))) is None


def test_a_photo_moved_around_is_a_spoof():
    verdict = judge(series([affine(FACE, *pose) for pose in POSES]), 6, 0.045)
    assert verdict.decision == "spoof" and verdict.samples == 6
    assert verdict.motion == pytest.approx(0.0, abs=1e-12)


def test_a_photo_held_still_is_a_spoof():
    verdict = judge(series([FACE] * 6), 6, 0.045)
    assert (verdict.decision, verdict.motion, verdict.samples) == ("spoof", 0.0, 6)


def test_a_turning_head_is_live_even_while_it_moves():
    # The nose swings 4 px either side of centre (a head turning left and right): its eye-frame coordinate goes
    # 0.25 +- 0.1, a standard deviation of exactly 0.1, while the whole face is also moved like the photo.
    turned = []
    for k, pose in enumerate(POSES):
        face = FACE.copy()
        face[2, 0] += 4 if k % 2 == 0 else -4
        turned.append(affine(face, *pose))
    verdict = judge(series(turned), 6, 0.045)
    assert verdict.decision == "live" and verdict.motion == pytest.approx(0.1)


def test_a_talking_mouth_is_live():
    # The mouth corners widen by 6 px each side on every other sample: mouth-left goes 0.15 eye spans out and
    # back, a standard deviation of 0.075.
    talking = []
    for k in range(6):
        face = FACE.copy()
        if k % 2:
            face[3, 0] -= 6
            face[4, 0] += 6
        talking.append(face)
    verdict = judge(series(talking), 6, 0.045)
    assert verdict.decision == "live" and verdict.motion == pytest.approx(0.075)


def test_landmark_noise_of_half_a_pixel_stays_below_the_threshold():
    # MTCNN's jitter on a photo at desk distance (eyes 40 px apart) is about half a pixel per landmark.
    rng = np.random.default_rng(0)
    motions = [nonrigid_motion(series([FACE + rng.normal(0, 0.5, FACE.shape) for _ in range(6)]))[0]
               for _ in range(200)]
    assert max(motions) < 0.045


def test_too_few_samples_are_undecided():
    verdict = judge(series([affine(FACE, *pose) for pose in POSES[:3]]), 6, 0.045)
    assert (verdict.decision, verdict.motion, verdict.samples) == ("undecided", None, 3)
    degenerate = np.zeros((5, 2))
    verdict = judge(series([FACE, FACE, degenerate, degenerate, FACE, FACE]), 6, 0.045)
    assert (verdict.decision, verdict.samples) == ("undecided", 4)


def test_pick_face_takes_the_largest_face_inside_the_region():
    region = np.array([0, 0, 200, 300], np.float32)
    face, hand, outside = (Face(np.array(b, np.float32), 0.99) for b in
                           ([50, 50, 110, 130], [120, 140, 150, 180], [150, 0, 260, 100]))
    assert pick_face([hand, face, outside], region) is face  # `outside` is larger, but under half inside
    assert pick_face([hand, outside], region) is hand
    assert pick_face([outside], region) is None
    assert pick_face([], region) is None


class ScriptedFaces:
    """A face detector that returns the next scripted list of faces and counts its calls."""

    def __init__(self, script: list[list[Face]]) -> None:
        self.script = iter(script)
        self.calls = 0

    def detect(self, image_rgb):
        self.calls += 1
        return next(self.script)


def face_at(landmarks: np.ndarray) -> Face:
    """A face with these landmarks and a box around them."""
    return Face(np.r_[landmarks.min(0) - 20, landmarks.max(0) + 20].astype(np.float32), 0.99,
                landmarks.astype(np.float32))


def run_check(faces: list[Face | None], fps: float = 8.0, t0: float = 1.0):
    """Start a check on a track named "lin" at t0 from faces[0], then step at `fps` feeding faces[1:] one per
    detector call (None = no face found); returns (track, outcomes, times of the detector calls)."""
    tracker = Tracker(0.3, 0.2, 10.0)
    (track,) = tracker.update([Detection(np.array([-100, -100, 400, 400], np.float32), 0.9)], t0)
    assert tracker.apply_faces([faces[0]], [Match("lin", 0.9)], t0) == [track.id]
    detector = ScriptedFaces([[f] if f is not None else [] for f in faces[1:]])
    monitor = LivenessMonitor(SETTINGS, detector)
    monitor.start([track], [Identified(faces[0], Match("lin", 0.9))], t0)
    frame = np.zeros((4, 4, 3), np.uint8)
    outcomes, calls, k = [], [], 0
    while monitor.pending:
        k += 1
        t = t0 + k / fps
        before = detector.calls
        done = monitor.step(frame, t)
        for outcome in done:  # the monitor writes no track: the tracker applies its verdicts
            tracker.apply_liveness(outcome.track.id, outcome.name, outcome.verdict.decision)
        outcomes += done
        if detector.calls > before:
            calls.append(round(t, 3))
    return track, outcomes, calls


def test_monitor_samples_every_window_over_samples_minus_one_and_keeps_a_live_owner():
    turned = [FACE + [[0, 0], [0, 0], [4 if k % 2 else -4, 0], [0, 0], [0, 0]] for k in range(6)]
    track, outcomes, calls = run_check([face_at(lm) for lm in turned])
    assert calls == [1.5, 1.875, 2.25, 2.625, 3.0]  # due every 0.4 s from 1.0: the first 8 fps frame at or after
    assert [(o.name, o.verdict.decision) for o in outcomes] == [("lin", "live")]
    assert outcomes[0].verdict.motion == pytest.approx(0.1)
    assert track.identity == "lin"


def test_monitor_turns_a_rigid_photo_into_unknown():
    track, outcomes, _ = run_check([face_at(affine(FACE, *pose)) for pose in POSES])
    assert [o.verdict.decision for o in outcomes] == ["spoof"]
    assert track.identity == "unknown"


def test_monitor_retries_a_missed_sample_and_gives_up_at_the_window_end_undecided():
    # The face is found at the face pass and twice more, then never: the detector tries every frame until
    # 2 s + one interval after the start, and the check ends with 3 samples; the track is unverified again so
    # that the face pass retries.
    track, outcomes, calls = run_check([face_at(FACE)] * 3 + [None] * 20)
    assert calls == [1.5, 1.875, 2.25, 2.375, 2.5, 2.625, 2.75, 2.875, 3.0, 3.125, 3.25, 3.375, 3.5]
    assert [(o.verdict.decision, o.verdict.samples) for o in outcomes] == [("undecided", 3)]
    assert track.identity is None and track.box_at_verify is None


def test_a_face_outside_the_track_is_not_sampled():
    far_away = Face(np.array([500, 500, 560, 570], np.float32), 0.99, (FACE + 500).astype(np.float32))
    track, outcomes, _ = run_check([face_at(FACE)] + [far_away] * 20)
    assert [(o.verdict.decision, o.verdict.samples) for o in outcomes] == [("undecided", 1)]


def test_a_face_pass_during_a_check_keeps_it_unless_it_renames_the_track():
    track = Track(3, np.array([0, 0, 400, 400], np.float32), "lin", 0.9, 1.0, verified_at=1.0)
    monitor = LivenessMonitor(SETTINGS, ScriptedFaces([]))
    first = Identified(face_at(FACE), Match("lin", 0.9))
    monitor.start([track], [first], 1.0)
    # a recheck names him again: the running check goes on from its start
    monitor.start([track], [Identified(face_at(FACE + 1), Match("lin", 0.9))], 1.5)
    assert monitor._checks[3].started == 1.0 and len(monitor._checks[3].samples) == 1
    track.identity = "unknown"  # a pass finds a stranger there: the check is dropped
    monitor.start([track], [Identified(face_at(FACE), Match(None, 0.1))], 1.8)
    assert not monitor.pending


def test_config_section_defaults_and_checks(tmp_path):
    assert load_config().liveness == Liveness(enabled=False, window_s=2.0, samples=10, threshold=0.046)
    bad = tmp_path / "config.yaml"
    bad.write_text("liveness:\n  samples: 2\n")
    with pytest.raises(ConfigError, match=r"liveness.samples = 2: must be an integer >= 3$"):
        load_config(bad)


def test_fewer_than_three_samples_is_refused():
    with pytest.raises(ValueError, match="liveness.samples must be >= 3"):
        LivenessMonitor(Liveness(enabled=True, window_s=2.0, samples=2, threshold=0.045), ScriptedFaces([]))


# ---------------------------------------------------------------------------------------- replays, real models


LIN = {"lin-manuel-miranda": EXAMPLES / "lin-manuel-miranda.png"}
ON = {"liveness": {"enabled": "true"}}


@pytest.fixture
def photo_video(tmp_path):
    """Make a 4 s webcam video of Lin-Manuel's enrolled photo printed and held up, still or moved by hand."""
    import cv2
    from helpers.media import write_video
    from helpers.spoof import spoof_frames

    photo = cv2.imread(str(need(EXAMPLES / "lin-manuel-miranda.png")))

    def make(moved: bool):
        frames = spoof_frames(photo, moved, seconds=4.0, card_width=260, seed=4)
        return write_video(tmp_path / f"photo-{'moved' if moved else 'still'}.mp4", frames, 30.0)

    return make


def kinds(events: list[dict], *names: str) -> list[dict]:
    """The events of these kinds, in order."""
    return [e for e in events if e["event"] in names]


def test_lins_real_scene_passes_liveness_and_keeps_him_named(tmp_path, model_dirs, monkeypatch):
    clip = write_segment(need(HAMILTON), LIN_CLOSE, tmp_path / "lin.mp4")
    final, events = replay(tmp_path, model_dirs, monkeypatch, clip, LIN, **ON)
    checks = kinds(events, "liveness")
    assert [(e["name"], e["verdict"], e["samples"], e["reason"]) for e in checks] == [
        ("lin-manuel-miranda", "live", 10, "liveness")]
    assert checks[0]["motion"] > 0.1  # measured 0.16, 3.5 times the threshold
    assert named_after_a_second_look(kinds(events, "face_pass"), "lin-manuel-miranda")
    assert all(e["identities"] == ["lin-manuel-miranda"] for e in kinds(events, "liveness"))
    assert kinds(events, "lock", "notify") == []
    assert final.face_passes == len(kinds(events, "face_pass"))  # the samples are not face passes


@pytest.mark.parametrize("moved", [False, True], ids=["photo held still", "photo moved by hand"])
def test_a_photo_of_lin_is_named_then_marked_unknown_and_locked_out(tmp_path, model_dirs, monkeypatch,
                                                                   photo_video, moved):
    final, events = replay(tmp_path, model_dirs, monkeypatch, photo_video(moved), LIN, **ON)
    first = kinds(events, "face_pass")[0]
    assert first["identities"] == ["lin-manuel-miranda"]  # FaceNet takes the photo for him
    checks = kinds(events, "liveness")
    assert [(e["verdict"], e["samples"], e["identities"]) for e in checks] == [("spoof", 10, ["unknown"])]
    assert 0.005 < checks[0]["motion"] < 0.035  # landmark noise only (measured 0.010-0.027); threshold 0.046
    locks = kinds(events, "lock")
    assert locks and locks[0]["ok"] and locks[0]["method"] == "dry-run"
    # The photo counted as the owner until the verdict; the stranger's clock starts there (policy rule 2).
    assert locks[0]["reason"] == "unknown face for 0.5 s"
    assert locks[0]["t"] == pytest.approx(checks[0]["t"] + 0.5, abs=0.07)
    assert checks[0]["t"] - first["t"] == pytest.approx(2.0, abs=0.15)


def test_without_liveness_the_photo_passes_for_lin(tmp_path, model_dirs, monkeypatch, photo_video):
    final, events = replay(tmp_path, model_dirs, monkeypatch, photo_video(True), LIN)
    assert kinds(events, "face_pass") and all(e["identities"] == ["lin-manuel-miranda"]
                                              for e in kinds(events, "face_pass"))
    assert kinds(events, "liveness", "lock", "notify") == []
