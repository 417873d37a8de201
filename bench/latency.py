"""Stranger enters → lock decision latency on replayed clips, per engine, in real time.

Usage: .venv/bin/python bench/latency.py [--engines torch onnx]
Each sample replays a real scene of a clip from a start frame where strangers are already in view (the owner,
obama.jpg, is enrolled and never appears), paced in real time at the default fps, with a freshly built daemon;
latency = wall time from the first frame being due to the dry-run lock call. Prints p50/p95 per engine, each
scene's replays ("none": no lock came, as when no face is ever clear enough to judge), and the cost of the
uncertain band: the latency of the replays where a face pass was uncertain (a second look decided) beside the
others.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import SHARED, scene, use_offline_models
from looping import LoopedReplay

# (name, clip, first frame, last frame) of scenes with strangers in view from their first frame.
SCENES = [("lin_wide", "hamilton", 0, 20), ("alex", "hamilton", 20, 82), ("lin_close", "hamilton", 82, 211),
          ("audience", "hamilton", 211, 275), ("crowd", "video", 0, 105)]
OFFSETS = (0, 4, 8)  # start a few frames into each scene too, so entry and frame ticks fall at other phases


def sample(engine: str, clip: Path, workdir: Path, extra: str) -> tuple[float | None, bool]:
    """One replay: (seconds from the first frame to the lock request or None if no lock came, whether a face pass
    before the lock was uncertain)."""
    from facewatch.app import build_daemon
    from facewatch.config import load_config

    owner = workdir / "faces" / "owner"
    owner.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHARED / "data" / "face_recognition_examples" / "examples" / "obama.jpg", owner / "obama.jpg")
    cfg = workdir / "config.yaml"
    cfg.write_text(f"engine: {engine}\nperson:\n  model: yolo11n_int8_320.onnx\ngallery:\n  dir: {workdir / 'faces'}\n"
                   "log:\n  events: false\n" + extra)
    config = load_config(cfg)
    daemon = build_daemon(config, str(clip), dry_run=True)
    source = LoopedReplay(str(clip), config.camera.fps, seconds=3.0, fast=False)
    daemon.loop.source = source
    locked: list[float] = []
    uncertain: list[bool] = []
    lock, identify = daemon.loop.policy.locker.lock, daemon.loop.faces.identify
    daemon.loop.policy.locker.lock = lambda reason: locked.append(time.monotonic()) or lock(reason)

    def watched(*args):
        found = identify(*args)
        if not locked:
            uncertain.extend(f.match.uncertain for f in found)
        return found

    daemon.loop.faces.identify = watched
    daemon.run()
    return (locked[0] - source.started if locked else None), any(uncertain)


def main() -> None:
    """Collect the samples per engine and print p50/p95."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["onnx"])
    parser.add_argument("--cooldown", type=float, help="trigger.cooldown_s (default: config.yaml's)")
    parser.add_argument("--unknown-seconds", type=float, help="policy.unknown_seconds (default: config.yaml's)")
    args = parser.parse_args()
    use_offline_models()
    extra = "".join(f"{section}:\n  {key}: {value}\n" for section, key, value in (
        ("trigger", "cooldown_s", args.cooldown), ("policy", "unknown_seconds", args.unknown_seconds))
        if value is not None)
    clips = [scene(f"{name}_{k}", range(start + k, stop), clip)
             for name, clip, start, stop in SCENES for k in OFFSETS]
    print("| engine | samples | no lock | p50 s | p95 s | max s |")
    print("|---|---|---|---|---|---|")
    for engine in args.engines:
        with tempfile.TemporaryDirectory() as tmp:
            runs = [sample(engine, c, Path(tmp) / c.stem, extra) for c in clips]
        got = [latency for latency, _ in runs]
        lat = sorted(x for x in got if x is not None)
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        print(f"| {engine} | {len(got)} | {got.count(None)} | {statistics.median(lat):.2f} | {p95:.2f} "
              f"| {lat[-1]:.2f} |")
        for name, *_ in SCENES:  # the replays of each scene, in OFFSETS order
            mine = [f"{x:.2f}" if x is not None else "none" for c, (x, _) in zip(clips, runs)
                    if c.stem.rsplit("_", 1)[0] == name]
            print(f"  {engine}, {name}: {' '.join(mine)} s")
        for label, band in (("a second look decided", True), ("decided at the first look", False)):
            part = [x for x, u in runs if u == band and x is not None]
            if part:
                print(f"  {engine}, {label}: {len(part)} replays, median {statistics.median(part):.2f} s, "
                      f"max {max(part):.2f} s")


if __name__ == "__main__":
    main()
