"""Shared fixtures: where ../shared is, the offline model dir, and an isolated user home per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.desktop import start_session_bus, stop
from helpers.shared import BUILD_MODELS, DATA, HAVE_TORCH, SHARED_MODELS, TORCH_REASON, need, need_torch

# Fixtures that load real weights: every test that uses one (directly or through another fixture) is slow.
REAL_NETWORK_FIXTURES = {"model_dirs", "face_pipeline"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that load real networks `slow`, so `pytest -m "not slow"` is a quick pass (CI runs all); in
    the light install (no torch), skip the tests marked `torch`, saying so."""
    for item in items:
        if REAL_NETWORK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if not HAVE_TORCH and "torch" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=TORCH_REASON))


@pytest.fixture
def data_dir() -> Path:
    """../shared/data: real face images and clips."""
    return need(DATA)


@pytest.fixture(scope="session")
def model_dirs() -> str:
    """FACEWATCH_MODEL_DIR value for tests: a writable build dir first, then the read-only shared copies. In the
    light install (no torch) the build dir is the onnx engine's own, built once by `models build`'s code, so the
    tests that run the daemon run it on onnx there."""
    need(SHARED_MODELS)
    build = BUILD_MODELS if HAVE_TORCH else BUILD_MODELS.with_name("models-onnx")
    build.mkdir(parents=True, exist_ok=True)
    if not HAVE_TORCH:
        from facewatch.build.onnx_models import build_onnx
        from facewatch.weights.variants import read_record

        if not read_record(build):
            build_onnx([build, SHARED_MODELS], "yolo11n_int8_320.onnx", 320, vggface2=None)
    return os.pathsep.join([str(build), str(SHARED_MODELS)])


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch, request) -> Path:
    """Point every user dir (config, data, state, cache) at a fresh temp folder, so tests never touch ~."""
    home = tmp_path_factory.mktemp("fwhome")
    monkeypatch.setenv("FACEWATCH_HOME", str(home))
    monkeypatch.delenv("FACEWATCH_CONFIG", raising=False)
    return home


@pytest.fixture
def session_bus(monkeypatch) -> str:
    """A private session dbus-daemon for one test; DBUS_SESSION_BUS_ADDRESS points at it."""
    proc, address = start_session_bus()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    yield address
    stop(proc)


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
