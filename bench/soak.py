"""Soak the daemon: replay a clip over and over for a long time and watch RSS, open files and threads for leaks.

Usage: .venv/bin/python bench/soak.py [--minutes 30] [--clip hamilton|video|PATH] [--fps 4] [--every 10] [--fast]
                                     [--engine auto|torch|onnx] [--liveness]
The clip restarts at its end on one continuous clock and is paced to wall time (30 minutes take 30 minutes)
unless --fast. Lin-Manuel Miranda is enrolled, locks are dry-run. Prints a summary and the RSS slope (least
squares over the second half, MB per hour); writes bench/out/soak-<time>.csv and .png. Not part of CI.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CLIPS, REPO, SHARED, cpu_s, rss_mb, use_offline_models
from looping import LoopedReplay

OUT = REPO / "bench" / "out"
OWNER = SHARED / "data" / "face_recognition_examples" / "examples" / "lin-manuel-miranda.png"


def open_fds() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    """OS threads of this process (native ones too: torch, ONNX Runtime, OpenCV pools)."""
    return len(os.listdir("/proc/self/task"))


def slope_per_hour(seconds: list[float], values: list[float]) -> float:
    """Least-squares slope of values over time, per hour."""
    if len(seconds) < 2:
        return float("nan")
    return float(np.polyfit(np.asarray(seconds) / 3600, np.asarray(values), 1)[0])


def plot(rows: list[dict], path: Path) -> None:
    """RSS, open fds and threads over the run, one panel each (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["clip_s"] / 60 for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    for ax, key, label in zip(axes, ("rss_mb", "fds", "threads"), ("RSS (MB)", "open fds", "threads")):
        ax.plot(minutes, [r[key] for r in rows], marker=".", linewidth=1)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes of replay")
    fig.suptitle("facewatch soak")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Build the daemon over the looped clip, sample while it runs, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="replay length on the clip's clock")
    parser.add_argument("--clip", default="hamilton", help="hamilton, video, or a video path")
    parser.add_argument("--fps", type=float, default=4.0, help="frames processed per second while stable")
    parser.add_argument("--every", type=float, default=10.0, help="seconds (clip clock) between samples")
    parser.add_argument("--fast", action="store_true", help="do not sleep: replay as fast as the loop runs")
    parser.add_argument("--liveness", action="store_true", help="enable the liveness check")
    parser.add_argument("--person-model", default="yolo11n_int8_320.onnx")
    parser.add_argument("--engine", choices=("auto", "torch", "onnx"), default="auto",
                        help="inference engine (onnx needs `facewatch models build` first)")
    args = parser.parse_args()
    clip = str(CLIPS.get(args.clip, args.clip))
    for path in (Path(clip), OWNER):
        if not path.exists():
            sys.exit(f"{path} is absent: run this beside the ../shared folder")
    use_offline_models()
    with tempfile.TemporaryDirectory() as home:
        os.environ["FACEWATCH_HOME"] = home  # event log, gallery cache and dry-run record go here, then away
        engine, rows = run(args, clip, Path(home))
    report(args, clip, engine, rows)


def run(args: argparse.Namespace, clip: str, home: Path) -> tuple[str, list[dict]]:
    """Replay for args.minutes with one sample every args.every seconds of clip time; return the engine that
    ran and the samples."""
    from facewatch.app import build_daemon
    from facewatch.config import load_config
    from facewatch.engine import choose_engine

    gallery = home / "faces" / "lin-manuel-miranda"
    gallery.mkdir(parents=True)
    shutil.copy(OWNER, gallery / OWNER.name)
    config = home / "config.yaml"
    config.write_text(f"engine: {args.engine}\nperson:\n  model: {args.person_model}\n"
                      f"gallery:\n  dir: {gallery.parent}\nliveness:\n  enabled: {str(args.liveness).lower()}\n")
    settings = load_config(config)
    daemon = build_daemon(settings, clip, fps=args.fps, dry_run=True)
    daemon.loop.source.close()
    source = daemon.loop.source = LoopedReplay(clip, daemon.loop.fps, args.minutes * 60, args.fast)
    rows: list[dict] = []
    cpu0, wall0 = cpu_s(), time.monotonic()

    def sample(*_) -> None:
        if rows and source.t < rows[-1]["clip_s"] + args.every:
            return
        st = daemon.state
        rows.append({"clip_s": round(source.t, 1), "wall_s": round(time.monotonic() - wall0, 1),
                     "rss_mb": round(rss_mb(), 1), "fds": open_fds(), "threads": os_threads(), "frames": st.frames,
                     "face_passes": st.face_passes, "loops": source.loops, "cpu_s": round(cpu_s() - cpu0, 1)})
        if len(rows) % 30 == 1:
            print(f"  {rows[-1]}", file=sys.stderr)

    daemon.loop.on_frame.append(sample)
    daemon.run()
    return choose_engine(settings), rows


def report(args: argparse.Namespace, clip: str, engine: str, rows: list[dict]) -> None:
    """Print the summary table and the slope; save the CSV and the plot."""
    if len(rows) < 2:
        sys.exit("soak: fewer than two samples; run longer (--minutes) or sample more often (--every)")
    OUT.mkdir(parents=True, exist_ok=True)
    stem = OUT / time.strftime("soak-%Y%m%d-%H%M%S")
    with open(f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, Path(f"{stem}.png"))
    last = rows[-1]
    second_half = [r for r in rows if r["clip_s"] >= last["clip_s"] / 2]
    print(f"soak: {engine} engine, {Path(clip).name} looped {last['loops']} times, "
          f"{last['clip_s'] / 60:.1f} min of replay in {last['wall_s'] / 60:.1f} min wall, "
          f"{args.fps:g} fps{' (fast)' if args.fast else ''}, {last['frames']} frames, "
          f"{last['face_passes']} face passes, CPU {100 * last['cpu_s'] / last['wall_s']:.0f} % of one core")
    shown = [rows[i] for i in sorted(set(np.linspace(0, len(rows) - 1, min(len(rows), 11)).astype(int)))]
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in shown:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    rss = [r["rss_mb"] for r in rows]
    print(f"RSS: first {rss[0]:.1f} MB, last {rss[-1]:.1f} MB, max {max(rss):.1f} MB; slope over the second half "
          f"{slope_per_hour([r['clip_s'] for r in second_half], [r['rss_mb'] for r in second_half]):+.1f} MB/h "
          f"({len(second_half)} samples)")
    for key in ("fds", "threads"):
        values = [r[key] for r in rows]
        print(f"{key}: min {min(values)}, max {max(values)} (second half {min(r[key] for r in second_half)}-"
              f"{max(r[key] for r in second_half)})")
    print(f"wrote {stem}.csv and {stem}.png")


if __name__ == "__main__":
    main()
