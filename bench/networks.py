"""Per-network cost on this machine: import time, RSS after loading, ms per inference (each in a fresh process).

Usage: .venv/bin/python bench/networks.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Each probe runs in its own interpreter so one network's imports do not hide another's memory.
PROBE = r'''
import json, sys, time
sys.path.insert(0, {bench!r})
from common import SHARED, peak_rss_mb, rss_mb, use_offline_models
use_offline_models()
import cv2, numpy as np
base = rss_mb()
what = {what!r}
t0 = time.perf_counter()
if what == "person":
    from facewatch.detectors.person import YoloPersonDetector
    net = YoloPersonDetector(SHARED / "models" / "yolo11n_int8_320.onnx")
    frame = cv2.imread(str(SHARED / "data/face_recognition_examples/examples/two_people.jpg"))
    run = lambda: net.detect(frame)
elif what == "mtcnn":
    from facewatch.detectors.face import MtcnnFaceDetector
    net = MtcnnFaceDetector()
    frame = cv2.cvtColor(cv2.imread(str(SHARED / "data/face_recognition_examples/examples/two_people.jpg")),
                         cv2.COLOR_BGR2RGB)
    run = lambda: net.detect(frame)
else:
    import os
    from pathlib import Path
    from facewatch.identity.embedding import TorchEmbedder
    from facewatch.weights.registry import casia_weights
    net = TorchEmbedder.from_state_dict(casia_weights([Path(d) for d in os.environ["FACEWATCH_MODEL_DIR"].split(os.pathsep)]))
    crops = np.random.default_rng(0).integers(0, 255, (1, 160, 160, 3), dtype=np.uint8)
    run = lambda: net.embed(crops)
load_s = time.perf_counter() - t0
run()  # warm-up
times = []
for _ in range(10):
    t = time.perf_counter(); run(); times.append((time.perf_counter() - t) * 1000)
print(json.dumps({{"load_s": load_s, "rss_base": base, "rss_loaded": rss_mb(), "peak": peak_rss_mb(),
                   "ms": sorted(times)[len(times) // 2]}}))
'''


def main() -> None:
    """Run the three probes and print a table."""
    bench = str(Path(__file__).resolve().parent)
    print("| network | import+load s | RSS before (numpy+cv2) MB | RSS loaded MB | ms per inference (median of 10) |")
    print("|---|---|---|---|---|")
    for what, label in (("person", "YOLO11n int8 320 (ultralytics, ONNX)"),
                        ("mtcnn", "MTCNN (facenet-pytorch, torch), 1126x661 photo"),
                        ("facenet", "FaceNet casia-webface (torch), 1 crop")):
        out = subprocess.run([sys.executable, "-c", PROBE.format(bench=bench, what=what)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {label} | {r['load_s']:.2f} | {r['rss_base']:.0f} | {r['rss_loaded']:.0f} | {r['ms']:.1f} |")


if __name__ == "__main__":
    main()
