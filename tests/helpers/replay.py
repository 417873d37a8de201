"""The real daemon over a real clip with given people enrolled, as a user would run it (dry run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from facewatch.app import build_daemon
from facewatch.config import load_config


def replay(tmp_path: Path, model_dirs: str, monkeypatch, clip: Path, enroll: dict[str, Path | tuple[Path, ...]],
           seen: list | None = None, **cfg) -> tuple:
    """Run the real daemon over a clip with the given people enrolled (a photo or several each); return (final
    state, events). `seen`, when given, collects (frame index, clip time, identities) of every processed frame."""
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    gallery = tmp_path / "faces"
    for name, photos in enroll.items():
        (gallery / name).mkdir(parents=True)
        for photo in (photos,) if isinstance(photos, Path) else photos:
            shutil.copy(photo, gallery / name / photo.name)
    lines = [f"person:\n  model: yolo11n_int8_320.onnx\ngallery:\n  dir: {gallery}\n"]
    lines += [f"{section}:\n" + "".join(f"  {k}: {v}\n" for k, v in values.items()) for section, values in cfg.items()]
    (tmp_path / "config.yaml").write_text("".join(lines))
    daemon = build_daemon(load_config(tmp_path / "config.yaml"), str(clip), dry_run=True)
    if seen is not None:
        step = daemon.step

        def recorded(frame, index, t):
            step(frame, index, t)
            seen.append((index, t, daemon.state.identities))

        daemon.step = recorded
    final = daemon.run()
    log = daemon.loop.events.path
    return final, [json.loads(line) for line in log.read_text().splitlines()]


def named_after_a_second_look(passes: list[dict], name: str) -> bool:
    """Every face pass names `name`, except an uncertain first look (every face matched `name` inside the
    uncertain band, so nobody is named yet) that the very next pass confirms: the banded decision at work."""
    for i, p in enumerate(passes):
        if name in p["identities"]:
            continue
        looked = bool(p["faces"]) and all(f["name"] == name and f.get("uncertain") for f in p["faces"])
        if not (looked and i + 1 < len(passes) and name in passes[i + 1]["identities"]):
            return False
    return bool(passes)
