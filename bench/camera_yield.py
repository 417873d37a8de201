"""How soon facewatch lets go of the camera when another program opens it (Linux, inotify + /proc).

A FrameSource's grab thread holds a stand-in camera node (a file in a temp dir, opened like /dev/video0);
a second process opens the node N times; each time the latency is from just before its open() to the moment
facewatch's capture closed its descriptor. Prints p50 / p95 / max in ms and the load average.

    python bench/camera_yield.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts tests/ on the path for helpers.locking)
from helpers.locking import NodeCapture, wait_until

from facewatch.capture import FrameSource
from facewatch.system.camera_yield import CameraYield

OPENER = ("import os, sys, time\nt = time.monotonic()\nfd = os.open(sys.argv[1], os.O_RDONLY)\n"
          "print(t, flush=True)\nsys.stdin.read()\n")


def main(runs: int) -> None:
    node = Path(tempfile.mkdtemp(prefix="fw-yield-")) / "video0"
    node.write_bytes(b"")
    log: list = []
    source = FrameSource(0, target_fps=30, capture_factory=lambda _: NodeCapture(node, log))
    watch = CameraYield(node, lambda busy: source.release() if busy else None, resume_after_s=0.2)
    latencies = []
    try:
        for _ in range(runs):
            source.reopen()
            wait_until(lambda: source.state == "running" and log[-1][0] == "open", what="the capture")
            time.sleep(0.1)  # the grab thread is pumping frames
            other = subprocess.Popen([sys.executable, "-c", OPENER, str(node)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
            before_open = float(other.stdout.readline())
            wait_until(lambda: log[-1][0] == "close", what="the release")
            latencies.append((log[-1][1] - before_open) * 1000)
            other.stdin.close()
            other.wait(5)
            wait_until(lambda: not watch.busy, what="the camera free again")
    finally:
        watch.close()
        source.close()
    latencies.sort()
    p50, p95 = latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    print(f"camera yield over {runs} opens: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms "
          f"(load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
