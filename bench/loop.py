"""Bench the watch loop on a replayed clip, gating on vs off (face pass every frame), and print one table.

Usage: .venv/bin/python bench/loop.py [--clip hamilton|video|PATH] [--fps 2] [--person-model yolo11n_int8_320.onnx]
CPU % is CPU time over the clip's own duration: what the loop would cost live at that frame rate.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import CLIPS, cpu_s, peak_rss_mb, rss_mb, use_offline_models


class EveryFrame:
    """A trigger that asks for a face pass on every frame: the ungated baseline."""

    pending = False
    confirmed_count = None

    def update(self, count: int, now: float) -> str:
        self.confirmed_count = count
        return "every_frame"

    def request(self, reason: str, urgent: bool = False) -> None:
        """Requests are moot when every frame runs a pass."""


def clip_seconds(clip: str) -> float:
    """The clip's duration on its own clock (frame count / frame rate)."""
    import cv2

    cap = cv2.VideoCapture(clip)
    try:
        return cap.get(cv2.CAP_PROP_FRAME_COUNT) / cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()


def run_once(clip: str, fps: float, person_model: str, gated: bool) -> dict:
    """Replay the clip through a freshly built daemon; return the measurements."""
    from facewatch.app import build_daemon
    from facewatch.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.yaml"
        cfg.write_text(f"person:\n  model: {person_model}\nlog:\n  events: false\n")
        daemon = build_daemon(load_config(cfg), clip, fps=fps, dry_run=True)
    if not gated:
        daemon.loop.trigger = EveryFrame()
    person_ms, face_ms = [], []
    detect = daemon.loop.person.detect

    def timed_detect(frame):
        start = time.perf_counter()
        out = detect(frame)
        person_ms.append((time.perf_counter() - start) * 1000)
        return out

    daemon.loop.person.detect = timed_detect
    identify = daemon.loop.faces.identify

    def timed_identify(*args):
        start = time.perf_counter()
        out = identify(*args)
        face_ms.append((time.perf_counter() - start) * 1000)
        return out

    daemon.loop.faces.identify = timed_identify
    cpu0, wall0 = cpu_s(), time.perf_counter()
    final = daemon.run()
    cpu, wall = cpu_s() - cpu0, time.perf_counter() - wall0
    clip_s = clip_seconds(clip)
    return {
        "gating": "on" if gated else "off",
        "frames": final.frames,
        "person ms/frame": statistics.median(person_ms),
        "ms/face pass": statistics.median(face_ms) if face_ms else 0.0,
        "face passes": final.face_passes,
        "passes/min": final.face_passes / clip_s * 60,
        "CPU % (live)": 100 * cpu / clip_s,
        "RSS MB": rss_mb(),
        "peak RSS MB": peak_rss_mb(),
        "wall s": wall,
    }


def main() -> None:
    """Parse options, run gated and ungated, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="hamilton", help="hamilton, video, or a video path")
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--person-model", default="yolo11n_int8_320.onnx")
    args = parser.parse_args()
    use_offline_models()
    clip = str(CLIPS.get(args.clip, args.clip))
    rows = [run_once(clip, args.fps, args.person_model, gated) for gated in (True, False)]
    print(f"clip {Path(clip).name} at {args.fps:g} fps, person model {args.person_model}, torch engine")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
