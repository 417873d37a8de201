"""The onnx engine end to end: built by `models build`, chosen by engine: auto, never imports torch, same answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.scenes import lin_photos
from helpers.shared import EXAMPLES, HAVE_TORCH, REPO, SHARED_MODELS, need

from facewatch.build.onnx_models import build_onnx
from facewatch.config import load_config
from facewatch.engine import choose_engine
from facewatch.identity.embedding import IdleReleasingEmbedder
from facewatch.weights.registry import ONNX_FACE_FILES
from facewatch.weights.variants import RECORD


@pytest.fixture(scope="module")
def onnx_dirs(model_dirs, tmp_path_factory) -> str:
    """Model dirs with a fresh onnx build first (kept apart so other tests stay on the torch engine)."""
    out = tmp_path_factory.mktemp("onnx-models")
    dirs = [out] + [Path(d) for d in model_dirs.split(os.pathsep)]
    choices = build_onnx(dirs, "yolo11n_int8_320.onnx", 320, vggface2=None)
    person = ["yolo11n_int8_320", "yolo11n_int8_320@192x320", "yolo11n_int8_320@256x320"]  # square, 16:9, 4:3
    assert sorted(c.network for c in choices) == sorted([Path(n).stem for n in ONNX_FACE_FILES] + person)
    assert all((out / c.file).is_file() for c in choices)
    return os.pathsep.join(str(d) for d in dirs)


def write_config(tmp_path: Path, engine: str) -> Path:
    gallery = tmp_path / "faces" / "lin-manuel-miranda"
    gallery.mkdir(parents=True, exist_ok=True)
    for photo in lin_photos(tmp_path / "enroll"):
        (gallery / photo.name).write_bytes(need(photo).read_bytes())
    cfg = tmp_path / f"{engine}.yaml"
    cfg.write_text(f"engine: {engine}\nembedding:\n  weights: casia-webface\nperson:\n  model: yolo11n_int8_320.onnx\n"
                   f"gallery:\n  dir: {tmp_path / 'faces'}\n")
    return cfg


def test_auto_picks_onnx_only_once_built(tmp_path, onnx_dirs, monkeypatch):
    cfg = write_config(tmp_path, "auto")
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", os.pathsep.join([str(tmp_path / "unbuilt"), str(SHARED_MODELS)]))
    assert choose_engine(load_config(cfg)) == ("torch" if HAVE_TORCH else "onnx")  # no torch: onnx, or nothing
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", onnx_dirs)
    assert choose_engine(load_config(cfg)) == "onnx"


REPLAY = r"""
import json, sys
from facewatch.app import build_daemon
from facewatch.config import load_config
daemon = build_daemon(load_config(sys.argv[1]), sys.argv[2], dry_run=True)
daemon.run()
events = [json.loads(l) for l in daemon.loop.events.path.read_text().splitlines()]
print(json.dumps({"torch": "torch" in sys.modules, "ultralytics": "ultralytics" in sys.modules,
                  "passes": [(e["frame"], e["identities"]) for e in events if e["event"] == "face_pass"]}))
"""


def replay(cfg: Path, dirs: str, home: Path) -> dict:
    """Replay the Hamilton clip in a fresh interpreter, so sys.modules shows what this engine imports."""
    env = {**os.environ, "FACEWATCH_MODEL_DIR": dirs, "FACEWATCH_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", REPLAY, str(cfg), str(EXAMPLES / "short_hamilton_clip.mp4")],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_onnx_daemon_on_the_chosen_variants_never_imports_torch(tmp_path, onnx_dirs):
    onnx = replay(write_config(tmp_path, "onnx"), onnx_dirs, tmp_path / "home-onnx")
    assert onnx["torch"] is False and onnx["ultralytics"] is False
    assert any("lin-manuel-miranda" in ids for _, ids in onnx["passes"])


@pytest.mark.torch
def test_onnx_daemon_on_the_plain_graphs_agrees_with_torch(tmp_path, onnx_dirs):
    record = Path(onnx_dirs.split(os.pathsep)[0]) / RECORD
    record.rename(record.with_suffix(".off"))  # no record: the onnx engine loads the same networks as torch
    try:
        onnx = replay(write_config(tmp_path, "onnx"), onnx_dirs, tmp_path / "home-onnx")
    finally:
        record.with_suffix(".off").rename(record)
    torch = replay(write_config(tmp_path, "torch"), onnx_dirs, tmp_path / "home-torch")
    assert onnx["torch"] is False and torch["torch"] is True
    assert onnx["passes"] == torch["passes"]  # same frames, same identities on both engines
    assert any("lin-manuel-miranda" in ids for _, ids in onnx["passes"])


class FakeEmbedder:
    def embed(self, crops, mirror=False):
        return crops[:, 0, 0, :1].astype("float32")


def test_facenet_is_loaded_on_use_and_released_when_idle():
    now = [0.0]
    loads = []
    lazy = IdleReleasingEmbedder(lambda: loads.append(now[0]) or FakeEmbedder(), idle_s=20.0, clock=lambda: now[0])
    assert not lazy.loaded and loads == []
    crops = np.zeros((1, 160, 160, 3), np.uint8)
    lazy.embed(crops)
    assert lazy.loaded and loads == [0.0]
    now[0] = 19.0
    assert lazy.release_idle() is False and lazy.loaded
    now[0] = 20.0
    assert lazy.release_idle() is True and not lazy.loaded
    lazy.embed(crops)
    assert loads == [0.0, 20.0]
    keep = IdleReleasingEmbedder(FakeEmbedder, idle_s=0, clock=lambda: now[0])
    keep.embed(crops)
    now[0] = 1e9
    assert keep.release_idle() is False and keep.loaded


def test_onnx_sessions_keep_the_person_buffers_and_give_the_face_pass_more_threads(tmp_path, onnx_dirs, monkeypatch):
    import facewatch.detectors.face
    import facewatch.identity.embedding
    from facewatch.engine import load_face_detector, load_facenet, load_person_detector
    from facewatch.weights.ort import FACE_PASS_THREADS

    opened: list[tuple[str, int, bool]] = []
    for module in (facewatch.detectors.face, facewatch.identity.embedding):
        def spy(path, what, hint, threads=1, memory_arena=False, _open=module.cpu_session):
            opened.append((what, threads, memory_arena))
            return _open(path, what, hint, threads, memory_arena)
        monkeypatch.setattr(module, "cpu_session", spy)
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", onnx_dirs)
    config = load_config(write_config(tmp_path, "onnx"))
    person = load_person_detector(config, "onnx")._session.get_session_options()
    assert (person.enable_cpu_mem_arena, person.enable_mem_pattern, person.intra_op_num_threads) == (True, False, 1)
    load_face_detector(config, "onnx")
    load_facenet(config, "onnx", "casia-webface")
    assert opened == [(f"MTCNN {stage} model", FACE_PASS_THREADS, False) for stage in ("P-Net", "R-Net", "O-Net")] \
        + [("FaceNet model", FACE_PASS_THREADS, False)]
