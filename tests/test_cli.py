"""The command line as a user meets it: one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import os
import sys

import pytest
from helpers.shared import DATA, need

from facewatch.cli import build_parser, main


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


def test_tray_takes_the_source_options_of_run(capsys, monkeypatch):
    def options(command: str) -> set[str]:
        sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
        return {flag for action in sub._actions for flag in action.option_strings}

    assert {"--camera", "--source", "--fps", "--no-lock"} <= options("tray")
    assert options("run") - options("tray") == {"--show"}
    monkeypatch.setattr("facewatch.capture.probe_camera", lambda index, *a, **k: False)
    code, out, err = run_cli(capsys, "tray", "--camera", "3")
    assert code == 1 and err.startswith("facewatch: no camera at index 3") and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        run_cli(capsys, "tray", "--camera", "0", "--source", "clip.mp4")  # one or the other, as for run
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux looks for a tray host before the daemon")
def test_tray_without_a_tray_host_says_so_before_loading_models(capsys, monkeypatch, tmp_path):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("facewatch.app.build_daemon", lambda *a, **k: pytest.fail("models loaded"))
    code, out, err = run_cli(capsys, "tray", "--source", str(tmp_path / "clip.mp4"))
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "facewatch: cannot show a tray icon (no display; no session bus (DBUS_SESSION_BUS_ADDRESS is not set, "
        "no $XDG_RUNTIME_DIR/bus)). The tray needs a desktop session (DISPLAY or WAYLAND_DISPLAY set); "
        "`facewatch run` watches without one."]


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


@pytest.mark.torch
def test_models_verify_lists_the_offline_copies(capsys, model_dirs, monkeypatch):
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    code, out, err = run_cli(capsys, "models", "verify")
    assert code == 0
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines() if line.startswith(("ok ", "missing", "corrupt"))}
    assert lines["yolo11n_int8_320.onnx"] == "ok" and lines["yolov8n_int8.onnx"] == "ok"
    assert lines["graph_final.pb"] == "ok" and lines["onet.pt"] == "ok"


@pytest.mark.torch
def test_doctor_reports_each_check(capsys, model_dirs, monkeypatch, tmp_path, isolated_home):
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    monkeypatch.setattr("facewatch.capture.probe_camera", lambda index, *a, **k: False)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("engine: torch\nperson:\n  model: yolo11n_int8_320.onnx\n")
    code, out, err = run_cli(capsys, "--config", str(cfg), "doctor")
    lines = out.splitlines()
    assert any(l.startswith("OK   torchvision.ops.nms:") for l in lines)
    assert "INFO engine: torch will run (engine is torch in the config); FaceNet casia-webface (auto: vggface2 is " \
           "not downloaded; `facewatch models build` fetches it)" in lines or "FaceNet vggface2" in out
    # Only the files this engine loads, each present and verified.
    assert [l.split(":")[0] for l in lines if l.split()[1] == "model"][:3] == \
           ["OK   model pnet.pt", "OK   model rnet.pt", "OK   model onet.pt"]
    assert any(l.startswith("OK   model yolo11n_int8_320.onnx: ") and l.endswith("(verified)") for l in lines)
    assert f"INFO user config: none at {isolated_home / 'config' / 'config.yaml'}: the defaults are in force; " \
           "`facewatch config --init` creates it, every setting commented out" in lines
    assert "FIX  camera: none opens (unplugged, busy, or no permission); replay a video with: " \
           "facewatch run --source clip.mp4" in lines
    assert any(l.startswith(("OK   screen lock: ", "FIX  screen lock: ")) for l in lines)
    assert f"FIX  enrolled: nobody in {isolated_home / 'data' / 'reference_faces'}: every face is a stranger and " \
           "locks the screen; enroll first: facewatch enroll NAME --from-camera (or --images PHOTO...)" in lines
    assert code == 1  # the camera line needs fixing on this machine


def test_doctor_says_fix_for_a_missing_model_and_names_the_file_for_person_model(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr("facewatch.capture.probe_camera", lambda index, *a, **k: True)
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("engine: onnx\n")
    code, out, err = run_cli(capsys, "--config", str(cfg), "doctor")
    lines = out.splitlines()
    assert any(l.startswith("FIX  model facenet_casia-webface.onnx: missing (the onnx engine)") for l in lines)
    # OK only for what is present and verified: the MTCNN graphs shipped in the package.
    assert [l.split(":")[0] for l in lines if l.startswith("OK   model")] == \
           ["OK   model mtcnn_pnet.onnx", "OK   model mtcnn_rnet.onnx", "OK   model mtcnn_onet.onnx"]
    assert any(l.startswith("FIX  model yolov5nu_320.onnx: missing") for l in lines)  # the person model's export
    assert code == 1
    cfg.write_text("engine: torch\n")
    code, out, err = run_cli(capsys, "--config", str(cfg), "doctor")
    person = next(l for l in out.splitlines() if l.startswith(("OK   person.model", "FIX  person.model")))
    assert person.startswith("FIX  person.model: yolov5nu.pt is not downloaded") and f"set person.model in {cfg}" in person


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
