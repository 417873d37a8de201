"""Per-network cost on this machine: import time, RSS after loading, ms per inference (each in a fresh process).

Usage: .venv/bin/python bench/networks.py
The onnx rows run the variants `facewatch models build` chose for this CPU (it builds them first, as
bench/memory.py does); the torch rows run only where the torch extra is installed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from memory import build_models

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
elif what.startswith("onnx-"):
    import os
    from pathlib import Path
    from facewatch.engine import onnx_file
    dirs = [Path(d) for d in os.environ["FACEWATCH_MODEL_DIR"].split(os.pathsep)]
    photo = cv2.imread(str(SHARED / "data/face_recognition_examples/examples/two_people.jpg"))
    if what == "onnx-person":
        from facewatch.detectors.person import OnnxPersonDetector
        net = OnnxPersonDetector(onnx_file("yolo11n_int8_320.onnx", dirs))
        run = lambda: net.detect(photo)
    elif what == "onnx-mtcnn":
        from facewatch.detectors.face import OnnxMtcnnFaceDetector
        net = OnnxMtcnnFaceDetector(*(onnx_file(n, dirs) for n in ("mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx")))
        rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
        run = lambda: net.detect(rgb)
    else:
        from facewatch.identity.embedding import OnnxEmbedder
        net = OnnxEmbedder(onnx_file("facenet_casia-webface.onnx", dirs))
        crops = np.random.default_rng(0).integers(0, 255, (1, 160, 160, 3), dtype=np.uint8)
        run = lambda: net.embed(crops)
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
    """Run the probes and print a table."""
    bench = str(Path(__file__).resolve().parent)
    build_models(bench)
    probes = [("onnx-person", "YOLO11n 320, variant chosen here (ONNX Runtime)"),
              ("onnx-mtcnn", "MTCNN (ONNX Runtime), 1126x661 photo"),
              ("onnx-facenet", "FaceNet casia-webface, variant chosen here (ONNX Runtime), 1 crop")]
    if importlib.util.find_spec("torch") is not None:
        probes += [("person", "YOLO11n int8 320 (ultralytics, ONNX)"),
                   ("mtcnn", "MTCNN (facenet-pytorch, torch), 1126x661 photo"),
                   ("facenet", "FaceNet casia-webface (torch), 1 crop")]
    print("| network | import+load s | RSS before (numpy+cv2) MB | RSS loaded MB | ms per inference (median of 10) |")
    print("|---|---|---|---|---|")
    for what, label in probes:
        out = subprocess.run([sys.executable, "-c", PROBE.format(bench=bench, what=what)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {label} | {r['load_s']:.2f} | {r['rss_base']:.0f} | {r['rss_loaded']:.0f} | {r['ms']:.1f} |")


if __name__ == "__main__":
    main()
