"""Model registry: files found in the model dirs, sha256 verified, and clear errors naming the file and its source."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers.shared import HAVE_TORCH, SHARED_MODELS, need

from facewatch.build.stackcheck import check_nms
from facewatch.weights import registry
from facewatch.weights.registry import ModelError, person_model_path, require, status


@pytest.mark.torch
def test_torchvision_nms_runs_with_the_installed_torch():
    line = check_nms()
    assert "nms OK" in line


def test_shared_onnx_models_verify(model_dirs):
    dirs = [Path(d) for d in model_dirs.split(os.pathsep)]
    path = require("yolo11n_int8_320.onnx", dirs)
    assert path == need(SHARED_MODELS) / "yolo11n_int8_320.onnx"
    rows = {name: state for name, state, _ in status(dirs)}
    assert rows["yolov8n_int8.onnx"] == "ok" and rows["yolo11n_int8_320.onnx"] == "ok"
    assert rows["graph_final.pb"] == rows["mtcnn_pnet.onnx"] == rows["mtcnn_onet.onnx"] == "ok"  # both installs
    if HAVE_TORCH:
        assert rows["pnet.pt"] == rows["rnet.pt"] == rows["onet.pt"] == "ok"


def test_missing_model_names_file_dirs_and_source(tmp_path):
    with pytest.raises(ModelError) as err:
        require("yolov8n_int8.onnx", [tmp_path])
    msg = str(err.value)
    assert msg.startswith("model file yolov8n_int8.onnx not found")
    assert str(tmp_path) in msg and "shared/models (see its MANIFEST.md)" in msg


def test_corrupt_model_is_refused_with_its_path(tmp_path):
    bad = tmp_path / "yolo11n_int8_320.onnx"
    shutil.copy(need(SHARED_MODELS) / "yolo11n_int8_320.onnx", bad)
    with open(bad, "r+b") as f:  # flip one byte in the middle
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match=r"yolo11n_int8_320.onnx is corrupt or not the expected file"):
        require("yolo11n_int8_320.onnx", [tmp_path])
    assert dict((n, s) for n, s, _ in status([tmp_path]))["yolo11n_int8_320.onnx"] == "corrupt"


def test_produced_file_is_checked_against_its_sidecar(tmp_path):
    weights = tmp_path / registry.CASIA_WEIGHTS
    weights.write_bytes(b"converted weights")
    registry.record_hash(weights)
    assert require(registry.CASIA_WEIGHTS, [tmp_path]) == weights
    weights.write_bytes(b"truncated")
    with pytest.raises(ModelError, match="corrupt"):
        require(registry.CASIA_WEIGHTS, [tmp_path])


@pytest.mark.torch
def test_person_model_offline_download_fails_with_the_fix(tmp_path, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(ModelError) as err:
        person_model_path("yolov5nu.pt", [tmp_path])
    msg = str(err.value)
    assert "yolov5nu.pt is not in" in msg and "could not be downloaded" in msg
    assert "yolo11n_int8_320.onnx" in msg  # names the offline alternative


def test_unknown_person_model_name(tmp_path):
    with pytest.raises(ModelError, match="not a known facewatch model"):
        person_model_path("nosuchmodel.onnx", [tmp_path])
