"""Where ../shared is (data and offline models), and the skip used where it is absent."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FACEWATCH_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
SHARED_MODELS = SHARED / "models"
# Converted/built models are written here once and reused across test runs (gitignored).
BUILD_MODELS = REPO / ".cache" / "models"
EXAMPLES = DATA / "face_recognition_examples" / "examples"
HAMILTON = EXAMPLES / "short_hamilton_clip.mp4"
# Scene cuts of the Hamilton clip (found by frame differencing, checked by eye): Lin-Manuel Miranda on stage in
# a wide shot, Alex Lacamoire in close-up, Lin-Manuel in a medium shot, then the audience.
LIN_WIDE, ALEX, LIN_CLOSE, AUDIENCE = range(0, 20), range(20, 82), range(82, 211), range(211, 275)
TWO_PEOPLE = EXAMPLES / "two_people.jpg"
STREET = DATA / "facenet_pytorch_samples" / "examples" / "video.mp4"
LFW_IMAGES = DATA / "lfw" / "lfw-deepfunneled"
YOLO11 = SHARED_MODELS / "yolo11n_int8_320.onnx"
YOLO8 = SHARED_MODELS / "yolov8n_int8.onnx"


def need(path: Path) -> Path:
    """Return `path`, or skip the test with the reason when the shared data/models are not beside the repo."""
    if not path.exists():
        import pytest  # the benches use these paths too, without pytest

        pytest.skip(f"{path} is absent: clone facewatch beside its ../shared folder to run this test")
    return path


# The light install has no torch stack: tests of the torch engine (or that use it as their reference) skip there.
HAVE_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "facenet_pytorch", "ultralytics"))
TORCH_REASON = "needs the torch extra (pip install 'facewatch[torch]'); this is the light install"


def need_torch() -> None:
    """Skip the calling test or fixture in the light install (no torch)."""
    if not HAVE_TORCH:
        import pytest

        pytest.skip(TORCH_REASON)


def reuse_cohort_embeddings(embedding_id: str):
    """Copy the cohort's embeddings kept in .cache/eval into this test's temporary home (embedding the 400 cohort
    faces costs minutes); returns a function that keeps them for the next test."""
    import shutil

    from facewatch.identity.cohort import cohort_cache_path

    home_copy, kept = cohort_cache_path(embedding_id), REPO / ".cache" / "eval" / cohort_cache_path(embedding_id).name
    if kept.is_file():
        home_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(kept, home_copy)

    def keep() -> None:
        if home_copy.is_file():
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(home_copy, kept)

    return keep
