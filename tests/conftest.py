"""Shared fixtures: where ../shared is, the offline model dir, and an isolated user home per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.shared import BUILD_MODELS, DATA, SHARED_MODELS, need

# Fixtures that load real weights: every test that uses one (directly or through another fixture) is slow.
REAL_NETWORK_FIXTURES = {"model_dirs", "face_pipeline"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that load real networks `slow`, so `pytest -m "not slow"` is a quick pass (CI runs all)."""
    for item in items:
        if REAL_NETWORK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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
    from facewatch.detectors.face import MtcnnFaceDetector
    from facewatch.identity.embedding import TorchEmbedder
    from facewatch.identity.pipeline import FacePipeline
    from facewatch.weights.registry import casia_weights

    weights = casia_weights([Path(d) for d in model_dirs.split(os.pathsep)])
    return FacePipeline(MtcnnFaceDetector(), TorchEmbedder.from_state_dict(weights))
