"""Scenario suite: real footage of real people cut into seat swaps, arrivals, an onlooker and long owner-only runs,
plus the real Hamilton and street clips, each replayed through the real daemon (onnx engine, dry run).

Usage: .venv/bin/python bench/scenarios.py [--realtime 4] [--detail] [--only swap,owner,...]
Clips are written to a temp dir (tests/helpers/scenes.py). Per scenario: whether a lock fired, the time from the
stranger's first frame to the lock decision in clip time (and for --realtime N swaps replayed at wall-clock pace,
the same in wall time), false locks of the owner (any lock while only the owner was in view), face passes per
minute, CPU % of one core over the clip's duration, and RSS. Prints the README "Scenarios" table.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import CLIPS, cpu_s, rss_mb, use_offline_models
from helpers.scenes import Scenario, catalogue, write_cuts
from helpers.shared import ALEX, DATA, EXAMPLES
from looping import LoopedReplay

# After a lock the daemon keeps the camera free for policy.grace_seconds when the OS cannot say "unlocked" (a dry
# run cannot): 1 s here instead of 10 s, so a suite of swaps does not spend minutes waiting; first locks are unchanged.
CONFIG = "engine: onnx\nperson:\n  model: yolo11n_int8_320.onnx\npolicy:\n  grace_seconds: 1.0\ngallery:\n  dir: {}\n"


def sample_rss(samples: list[float], done: threading.Event) -> None:
    """RSS every 0.25 s until done."""
    while not done.wait(0.25):
        samples.append(rss_mb())


def replay(scenario: Scenario, clip: Path, work: Path, realtime: bool) -> dict:
    """Run the daemon over one clip with the scenario's people enrolled; return its measurements."""
    from facewatch.app import build_daemon
    from facewatch.config import load_config

    home = Path(tempfile.mkdtemp(dir=work))
    os.environ["FACEWATCH_HOME"] = str(home)
    gallery = home / "faces"
    for name, photos in scenario.enroll.items():
        (gallery / name).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, gallery / name / photo.name)
    (home / "config.yaml").write_text(CONFIG.format(gallery))
    daemon = build_daemon(load_config(home / "config.yaml"), str(clip), dry_run=True)
    seconds = clip_seconds(clip)
    epoch = time.time()
    if realtime:
        daemon.loop.source = LoopedReplay(str(clip), daemon.loop.fps, seconds, fast=False)
    names = []  # (t, identities) of every processed frame
    step = daemon.step

    def recorded(frame, index, t):
        step(frame, index, t)
        names.append((t, daemon.state.identities))

    daemon.step = recorded
    samples, done = [], threading.Event()
    threading.Thread(target=sample_rss, args=(samples, done), daemon=True).start()
    cpu0 = cpu_s()
    final = daemon.run()
    cpu = cpu_s() - cpu0
    done.set()
    events = [json.loads(line) for line in daemon.loop.events.path.read_text().splitlines()]
    shutil.rmtree(home, ignore_errors=True)
    return measure(scenario, events, names, final.face_passes, seconds, cpu, samples, epoch if realtime else None)


def in_child(scenario: Scenario, clip: Path, work: Path, realtime: bool) -> dict:
    """replay() in a fresh process, so each scenario's CPU and RSS are its own (models loaded once per run)."""
    job = work / "job.pickle"
    job.write_bytes(pickle.dumps((scenario, clip, work, realtime)))
    out = subprocess.run([sys.executable, __file__, "--child", str(job)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{scenario.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(scenario: Scenario, events: list[dict], names: list, passes: int, seconds: float, cpu: float,
            rss: list[float], epoch: float | None) -> dict:
    """The per-scenario figures from the event log and the per-frame identities."""
    locks = [e for e in events if e["event"] == "lock"]
    at = scenario.stranger_at
    owner_alone = [e for e in locks if at is None or e["t"] < at]
    first = next((e for e in locks if at is not None and e["t"] >= at), None)
    row = {"scenario": scenario.name, "kind": scenario.kind, "lock": first is not None,
           "delay": None if first is None else first["t"] - at, "realtime": None,
           "false owner locks": len(owner_alone), "passes/min": passes / seconds * 60, "CPU %": 100 * cpu / seconds,
           "RSS MB": statistics.median(rss) if rss else rss_mb(), "seconds": seconds,
           "notify": [e["reason"] for e in events if e["event"] == "notify"],
           "suspended": [(e["t"], e["reason"]) for e in events if e["event"] == "suspended"], "names": names}
    if first is not None and epoch is not None:
        row["realtime"] = first["time"] - epoch - at
    return row


def clip_seconds(clip: Path) -> float:
    """Duration of a clip on its own clock."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    try:
        return cap.get(cv2.CAP_PROP_FRAME_COUNT) / cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()


def real_clips() -> list[tuple[Scenario, Path]]:
    """The real clips as they are: Hamilton with Lin-Manuel enrolled (scene cuts onto other people), with Alex
    enrolled (Lin-Manuel is the stranger), and the street clip with someone enrolled who is not in it."""
    lin, alex = EXAMPLES / "lin-manuel-miranda.png", EXAMPLES / "alex-lacamoire.png"
    street_owner = sorted((DATA / "facenet_pytorch_samples" / "data" / "test_images").iterdir())[0]
    return [
        (Scenario("Hamilton, Lin-Manuel enrolled", "real", (), {"lin": (lin,)}, stranger_at=ALEX.start / 29.97),
         CLIPS["hamilton"]),  # the cut to Alex Lacamoire, then the audience: other people, locked out
        (Scenario("Hamilton, Alex enrolled", "real", (), {"alex": (alex,)}, stranger_at=0.0), CLIPS["hamilton"]),
        (Scenario(f"video.mp4, {street_owner.name} enrolled", "real", (), {street_owner.name: tuple(
            sorted(street_owner.glob("*.jpg")))}, stranger_at=0.0), CLIPS["video"]),
    ]


def summary(rows: list[dict], label: str) -> str:
    """One table line over a group of rows."""
    delays = sorted(r["delay"] for r in rows if r["delay"] is not None)
    real = sorted(r["realtime"] for r in rows if r["realtime"] is not None)
    locked = f"{sum(r['lock'] for r in rows)}/{len(rows)}"
    fmt = (lambda v: "-" if not v else f"{statistics.median(v):.2f} / {quantile(v, 0.95):.2f} / {max(v):.2f}")
    minutes = sum(r["seconds"] for r in rows) / 60
    return (f"| {label} | {len(rows)} | {minutes:.1f} | {locked} "
            f"| {fmt(delays)} | {fmt(real)} | {sum(r['false owner locks'] for r in rows)} "
            f"| {sum(r['passes/min'] * r['seconds'] for r in rows) / max(minutes * 60, 1e-9):.1f} "
            f"| {statistics.mean(r['CPU %'] for r in rows):.0f} | {statistics.median(r['RSS MB'] for r in rows):.0f} |")


def quantile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (values sorted)."""
    pos = (len(values) - 1) * q
    low = int(pos)
    return values[low] + (values[min(low + 1, len(values) - 1)] - values[low]) * (pos - low)


def main() -> None:
    """Build the clips, replay each scenario, print the table (and per-scenario lines with --detail)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realtime", type=int, default=4, help="also replay this many swaps at wall-clock pace")
    parser.add_argument("--detail", action="store_true", help="one line per scenario as well")
    parser.add_argument("--only", default="", help="comma-separated kinds: swap,leave,arrive,onlooker,owner,real")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one pickled scenario, print its JSON
    args = parser.parse_args()
    use_offline_models()
    if args.child:
        print(json.dumps(replay(*pickle.loads(Path(args.child).read_bytes()))))
        return
    kinds = set(filter(None, args.only.split(",")))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        todo = [(s, write_cuts(s.parts, work / f"clip{k}.mp4")) for k, s in enumerate(catalogue(work))]
        todo = [(s, c) for s, c in todo + real_clips() if not kinds or s.kind in kinds]
        rows = [in_child(s, c, work, realtime=False) for s, c in todo]
        swaps = [(s, c) for s, c in todo if s.kind == "swap"][:: max(1, 27 // max(args.realtime, 1))][:args.realtime]
        for scenario, clip in swaps:
            live = in_child(scenario, clip, work, realtime=True)
            next(r for r in rows if r["scenario"] == scenario.name)["realtime"] = live["realtime"]
    print(f"scenarios, onnx engine, defaults (2 fps idle, 8 fps active), 2-core CPU, load {load:.1f} at start")
    print("| scenario | instances | clip min | locks | stranger's first frame -> lock, s: p50 / p95 / max "
          "| same, real-time replay | false owner locks | face passes/min | CPU % of a core | RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    groups = {"swap (webcam people)": [r for r in rows if r["kind"] == "swap" and "lfw" not in r["scenario"]],
              "swap (LFW photos, pan/zoom)": [r for r in rows if "swap lfw" in r["scenario"]]}
    groups |= {r["scenario"]: [r] for r in rows if r["kind"] != "swap"}
    for label, group in groups.items():
        if group:
            print(summary(group, label))
    for r in rows:
        if r["notify"]:
            print(f"{r['scenario']}: notify {r['notify']}")
    if args.detail:
        for r in rows:
            print(r["scenario"], {k: v for k, v in r.items() if k not in ("names", "scenario")})


if __name__ == "__main__":
    main()
