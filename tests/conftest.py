"""Shared fixtures: where ../shared is, the offline model dir, and an isolated user home per test."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# bench/common.py holds helpers the tests share with the benchmarks (e.g. cutting a scene out of a clip).
sys.path.insert(0, str(REPO / "bench"))
SHARED = Path(os.environ.get("FACEWATCH_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
SHARED_MODELS = SHARED / "models"
# Converted/built models are written here once and reused across test runs (gitignored).
BUILD_MODELS = REPO / ".cache" / "models"


# The light install has no torch stack: tests of the torch engine (or that use it as their reference) skip there.
HAVE_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "facenet_pytorch", "ultralytics"))
TORCH_REASON = "needs the torch extra (pip install 'facewatch[torch]'); this is the light install"


def pytest_collection_modifyitems(config, items) -> None:
    """Skip the tests marked `torch` where the torch stack is not installed, saying so."""
    if not HAVE_TORCH:
        for item in items:
            if "torch" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=TORCH_REASON))


def need_torch() -> None:
    """Skip the calling test or fixture in the light install (no torch)."""
    if not HAVE_TORCH:
        pytest.skip(TORCH_REASON)


def need(path: Path) -> Path:
    """Return `path`, or skip the test with the reason when the shared data/models are not beside the repo."""
    if not path.exists():
        pytest.skip(f"{path} is absent: clone facewatch beside its ../shared folder to run this test")
    return path


@pytest.fixture
def data_dir() -> Path:
    """../shared/data: real face images and clips."""
    return need(DATA)


@pytest.fixture(scope="session")
def model_dirs() -> str:
    """FACEWATCH_MODEL_DIR value for tests: a writable build dir first, then the read-only shared copies."""
    need(SHARED_MODELS)
    BUILD_MODELS.mkdir(parents=True, exist_ok=True)
    return os.pathsep.join([str(BUILD_MODELS), str(SHARED_MODELS)])


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch, request) -> Path:
    """Point every user dir (config, data, state, cache) at a fresh temp folder, so tests never touch ~."""
    home = tmp_path_factory.mktemp("fwhome")
    monkeypatch.setenv("FACEWATCH_HOME", str(home))
    monkeypatch.delenv("FACEWATCH_CONFIG", raising=False)
    return home


@pytest.fixture(scope="session")
def face_pipeline(model_dirs):
    """The real face pass (MTCNN + FaceNet casia-webface, converted once into .cache/models), shared by tests."""
    need_torch()
    from facewatch.detectors.face import MtcnnFaceDetector
    from facewatch.identity.embedding import TorchEmbedder
    from facewatch.identity.pipeline import FacePipeline
    from facewatch.weights.registry import casia_weights

    weights = casia_weights([Path(d) for d in model_dirs.split(os.pathsep)])
    return FacePipeline(MtcnnFaceDetector(), TorchEmbedder.from_state_dict(weights))
