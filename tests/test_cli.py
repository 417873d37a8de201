"""The command line as a user meets it: one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import os

import pytest
from helpers.shared import DATA, need

from facewatch.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_without_a_camera_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr("facewatch.capture.probe_camera", lambda index, *a, **k: False)
    code, out, err = run_cli(capsys, "run", "--camera", "0")
    assert code == 1
    assert err.strip().splitlines() == [
        "facewatch: no camera at index 0 (unplugged, busy or no permission) — replay a video with: "
        "facewatch run --source clip.mp4"
    ]


def test_run_with_a_missing_video_is_a_clear_error(capsys, tmp_path, model_dirs, monkeypatch):
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    code, out, err = run_cli(capsys, "run", "--source", str(tmp_path / "no such clip.mp4"))
    assert code == 2 and "Traceback" not in err
    assert "no such clip.mp4" in err and err.startswith("facewatch: error:")


def test_bad_config_value_names_the_key(capsys, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("trigger:\n  cooldown_s: -1\n")
    code, out, err = run_cli(capsys, "--config", str(cfg), "list")
    assert code == 2
    assert err.strip() == f"facewatch: error: {cfg}: trigger.cooldown_s = -1: must be a number >= 0"


def test_models_verify_lists_the_offline_copies(capsys, model_dirs, monkeypatch):
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    code, out, err = run_cli(capsys, "models", "verify")
    assert code == 0
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines() if line.startswith(("ok ", "missing", "corrupt"))}
    assert lines["yolo11n_int8_320.onnx"] == "ok" and lines["yolov8n_int8.onnx"] == "ok"
    assert lines["graph_final.pb"] == "ok" and lines["onet.pt"] == "ok"


def test_doctor_reports_each_check(capsys, model_dirs, monkeypatch):
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    monkeypatch.setattr("facewatch.capture.probe_camera", lambda index, *a, **k: False)
    code, out, err = run_cli(capsys, "doctor")
    lines = out.splitlines()
    assert any(l.startswith("OK   torchvision.ops.nms:") for l in lines)
    assert any(l.startswith("OK   model yolo11n_int8_320.onnx: ok") for l in lines)
    assert "FIX  camera: none opens (unplugged, busy, or no permission); replay a video with: " \
           "facewatch run --source clip.mp4" in lines
    assert code == 1  # the camera line needs fixing on this machine


@pytest.mark.slow
def test_enroll_list_remove_round_trip(capsys, tmp_path, monkeypatch):
    photo = need(DATA / "face_recognition_examples" / "examples" / "obama.jpg")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"gallery:\n  dir: {tmp_path / 'faces'}\n")
    code, out, err = run_cli(capsys, "--config", str(cfg), "enroll", "barack", "--images", str(photo))
    assert code == 0 and "1 photo(s) enrolled for barack" in out
    assert oct(os.stat(tmp_path / "faces" / "barack" / "obama.jpg").st_mode & 0o777) == "0o600"
    code, out, err = run_cli(capsys, "--config", str(cfg), "list")
    assert "  barack: 1 photo(s)" in out.splitlines()
    code, out, err = run_cli(capsys, "--config", str(cfg), "remove", "barack")  # no tty, no --yes
    assert code == 2 and "without confirmation; add --yes" in err
    assert (tmp_path / "faces" / "barack" / "obama.jpg").exists()
    code, out, err = run_cli(capsys, "--config", str(cfg), "remove", "barack", "--yes")
    assert code == 0 and not (tmp_path / "faces" / "barack").exists()
    code, out, err = run_cli(capsys, "--config", str(cfg), "remove", "../etc", "--yes")
    assert code == 2 and "invalid person name" in err
