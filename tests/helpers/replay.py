"""The real daemon over a real clip with given people enrolled, as a user would run it (dry run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from facewatch.app import build_daemon
from facewatch.config import load_config


def replay(tmp_path: Path, model_dirs: str, monkeypatch, clip: Path, enroll: dict[str, Path], **cfg) -> tuple:
    """Run the real daemon over a clip with the given people enrolled; return (final state, events)."""
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    gallery = tmp_path / "faces"
    for name, photo in enroll.items():
        (gallery / name).mkdir(parents=True)
        shutil.copy(photo, gallery / name / photo.name)
    lines = [f"person:\n  model: yolo11n_int8_320.onnx\ngallery:\n  dir: {gallery}\n"]
    lines += [f"{section}:\n" + "".join(f"  {k}: {v}\n" for k, v in values.items()) for section, values in cfg.items()]
    (tmp_path / "config.yaml").write_text("".join(lines))
    daemon = build_daemon(load_config(tmp_path / "config.yaml"), str(clip), dry_run=True)
    final = daemon.run()
    log = daemon.loop.events.path
    return final, [json.loads(line) for line in log.read_text().splitlines()]
