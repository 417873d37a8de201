"""RSS, CPU and per-frame cost of the daemon per engine on a replayed clip, each run in a fresh process.

Usage: .venv/bin/python bench/memory.py [--seconds 60] [--fps 2]
Runs (1) the torch engine, (2) the onnx engine, (3) the onnx engine with gating off (face pass every frame) on one
real frame with one person (Hamilton frame 150) delivered at --fps in real time, as a person sitting still at the
desk: raw frames, as a camera gives them, with no video decoder in the process. (4) is (2) with the frame
decoded from the clip in the daemon's process, as `--source clip.mp4` does (FFmpeg's decoder pages resident).
Prints one table: peak RSS, RSS while FaceNet is held (median of the samples taken while it is
loaded), steady RSS (median of the second half, FaceNet released), CPU % of one core, ms per frame, ms per face
pass. Saves RSS over time to bench/out/memory.png when matplotlib is installed. Builds the onnx engine's models
first (`facewatch models build` into the repo's .cache/models: a fresh clone needs nothing else); the torch row
runs only where the torch extra is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from common import CLIPS, OUT, REPO

STILL = OUT / "memory_still.npy"  # Hamilton frame 150, decoded once by the build step (gitignored bench/out)

# One run: a daemon over a looping, real-time-paced source; RSS sampled by a thread every 0.25 s.
PROBE = r'''
import json, statistics, sys, tempfile, threading, time
sys.path.insert(0, {bench!r})
from common import cpu_s, peak_rss_mb, rss_mb, use_offline_models
use_offline_models()
from pathlib import Path
import cv2
from looping import StillSource
from facewatch.app import build_daemon
from facewatch.config import load_config

tmp = Path(tempfile.mkdtemp())
(tmp / "config.yaml").write_text("engine: {engine}\nperson:\n  model: yolo11n_int8_320.onnx\nlog:\n  events: false\n")
config = load_config(tmp / "config.yaml")
if {decoded}:  # as `facewatch run --source clip.mp4`: the video decoder is in the process
    daemon = build_daemon(config, {clip!r}, fps={fps}, dry_run=True)
    cap = cv2.VideoCapture({clip!r}); cap.set(cv2.CAP_PROP_POS_FRAMES, 150); frame = cap.read()[1]; cap.release()
    daemon.loop.source = StillSource(frame, {fps}, {seconds})
else:  # as a camera: raw frames, no video decoder loaded
    import numpy as np
    daemon = build_daemon(config, StillSource(np.load({still!r}), {fps}, {seconds}), fps={fps}, dry_run=True)
if {ungated}:
    from loop import EveryFrame
    daemon.loop.trigger = EveryFrame()
person_ms, face_ms, samples = [], [], []
detect, identify = daemon.loop.person.detect, daemon.loop.faces.identify
embedder = daemon.loop.faces.embedder
def timed(fn, store):
    def run(*a):
        t = time.perf_counter(); out = fn(*a); store.append((time.perf_counter() - t) * 1000); return out
    return run
daemon.loop.person.detect = timed(detect, person_ms)
daemon.loop.faces.identify = timed(identify, face_ms)
start, cpu0, done = time.perf_counter(), cpu_s(), threading.Event()
def sample():
    while not done.wait(0.25):
        samples.append((time.perf_counter() - start, rss_mb(), embedder.loaded))
threading.Thread(target=sample, daemon=True).start()
final = daemon.run()
done.set()
wall, cpu = time.perf_counter() - start, cpu_s() - cpu0
half = [r for t, r, held in samples if t >= wall / 2 and not held]
held = [r for t, r, loaded in samples if loaded]
print(json.dumps({{"peak": peak_rss_mb(), "steady": statistics.median(half or [0]),
                   "held": statistics.median(held or [0]), "cpu": 100 * cpu / wall,
                   "person_ms": statistics.median(person_ms), "face_ms": statistics.median(face_ms or [0]),
                   "passes": final.face_passes, "frames": final.frames, "samples": samples,
                   "torch": "torch" in sys.modules}}))
'''


def main() -> None:
    """Run the three configurations and print the table; save the RSS plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="wall seconds per run")
    parser.add_argument("--fps", type=float, default=2.0)
    args = parser.parse_args()
    bench = str(Path(__file__).resolve().parent)
    clip = str(CLIPS["hamilton"])  # frame 150: Lin-Manuel Miranda alone, one stable person
    build_models(bench, clip)
    runs = {}
    configs = [("onnx", "onnx", False, False), ("onnx, gating off", "onnx", True, False),
               ("onnx, frames decoded from the clip file", "onnx", False, True)]
    if importlib.util.find_spec("torch") is not None:
        configs.insert(0, ("torch", "torch", False, False))
    for label, engine, ungated, decoded in configs:
        code = PROBE.format(bench=bench, clip=clip, fps=args.fps, seconds=args.seconds, engine=engine,
                            ungated=ungated, decoded=decoded, still=str(STILL))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
        if out.returncode != 0:
            sys.exit(f"{label} run failed:\n{out.stderr[-2000:]}")
        runs[label] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"one person sitting still, {args.seconds:g} s at {args.fps:g} fps (real time), 2-core CPU")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} (1 min)")
    print("| engine | torch imported | peak RSS MB | held RSS MB | steady RSS MB | CPU % of one core "
          "| person ms/frame | ms/face pass | face passes | frames |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in runs.items():
        steady = f"{r['steady']:.0f}" if r["steady"] else "- (always held)"
        print(f"| {label} | {'yes' if r['torch'] else 'no'} | {r['peak']:.0f} | {r['held']:.0f} | {steady} "
              f"| {r['cpu']:.1f} | {r['person_ms']:.1f} | {r['face_ms']:.0f} | {r['passes']} | {r['frames']} |")
    plot(runs, REPO / "bench" / "out" / "memory.png")


BUILD = r'''
import os, sys
from pathlib import Path
sys.path.insert(0, {bench!r})
from common import use_offline_models
use_offline_models()
from facewatch.build.onnx_models import build_onnx
dirs = [Path(d) for d in os.environ["FACEWATCH_MODEL_DIR"].split(os.pathsep)]
build_onnx(dirs, "yolo11n_int8_320.onnx", 320, None, say=lambda line: print(f"models build: {{line}}"))
import cv2, numpy as np
cap = cv2.VideoCapture({clip!r}); cap.set(cv2.CAP_PROP_POS_FRAMES, 150); np.save({still!r}, cap.read()[1])
'''


def build_models(bench: str, clip: str) -> None:
    """`facewatch models build` for the bench's config (yolo11n_int8_320.onnx) into the offline model dirs, and the
    still frame decoded to STILL, in their own process: Linux keeps a process's peak RSS across exec, so a build
    here would show up in every run's peak, and a decoder loaded here in every run's steady RSS."""
    STILL.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", BUILD.format(bench=bench, clip=clip, still=str(STILL))], check=True, cwd=REPO)


def plot(runs: dict, path: Path) -> None:
    """RSS over time, one line per configuration (skipped without matplotlib, which the light install lacks)."""
    if importlib.util.find_spec("matplotlib") is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, r in runs.items():
        t, rss, _ = zip(*r["samples"])
        ax.plot(t, rss, label=label)
    ax.set_xlabel("seconds")
    ax.set_ylabel("RSS MB")
    ax.set_title("facewatch daemon RSS over time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"RSS plot: {path}")


if __name__ == "__main__":
    main()
