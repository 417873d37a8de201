"""Build the shipped impostor cohort: aligned face crops of LFW people who are not in any evaluation identity set.

Developer tool, run once from the repository root beside ../shared (needs the torch MTCNN):
    python scripts/build_cohort.py [--shared ../shared]
Writes facewatch/data/cohort_faces.jpg (a mosaic of 160x160 crops, margin 32, the face pipeline's input) and
cohort_faces.json (provenance: source repository and commit, per tile the source file and its sha256, the face box,
and the mosaic's sha256 that facewatch checks before use). Only derived crops are shipped, no source file.

Who: LFW people with exactly one photo (LFW's identification sets use people with several, so the cohort shares no
identity with them), drawn with a fixed seed; the first COHORT_SIZE in whom MTCNN finds a face.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from facewatch.detectors.face import MtcnnFaceDetector  # noqa: E402
from facewatch.identity.embedding import CROP_SIZE, face_crops  # noqa: E402
from facewatch.evaluation.datasets import central_face  # noqa: E402
from facewatch.identity.cohort import COLUMNS, COHORT_IMAGE, COHORT_RECORD, MARGIN  # noqa: E402
from facewatch.imageio import read_rgb  # noqa: E402

COHORT_SIZE = 400
DRAW, SEED = 500, 15
SOURCE = "fistfulofyen/Face_sys_LFW@c204e463 archive/lfw-deepfunneled/ (deep-funneled LFW, via ../shared/data/lfw)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared data folder")
    args = parser.parse_args()
    root = args.shared / "data" / "lfw" / "lfw-deepfunneled"
    singles = sorted(p.name for p in root.iterdir() if p.is_dir() and len(list(p.iterdir())) == 1)
    drawn = sorted(np.random.default_rng(SEED).choice(singles, DRAW, replace=False).tolist())
    detector = MtcnnFaceDetector()  # the config defaults: min face 40, thresholds 0.6/0.7/0.7, probability 0.9
    tiles, entries = [], []
    for name in drawn:
        path = next((root / name).iterdir())
        image = read_rgb(path)
        face = central_face(detector.detect(image), image.shape)
        if face is None:
            continue
        tiles.append(face_crops(image, face.box, margin=MARGIN)[0])
        entries.append({"person": name, "file": f"{name}/{path.name}",
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "box": [round(float(v), 1) for v in face.box]})
        if len(tiles) == COHORT_SIZE:
            break
    rows = -(-len(tiles) // COLUMNS)
    mosaic = np.zeros((rows * CROP_SIZE, COLUMNS * CROP_SIZE, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, COLUMNS)
        mosaic[r * CROP_SIZE:(r + 1) * CROP_SIZE, c * CROP_SIZE:(c + 1) * CROP_SIZE] = tile
    # JPEG blocks are 16 px at most and 160 is a multiple of 16: no tile's pixels bleed into another's.
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(mosaic, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    COHORT_IMAGE.write_bytes(data.tobytes())
    record = {
        "what": "impostor cohort for per-owner calibration: aligned face crops, one per person, row-major tiles",
        "source": SOURCE,
        "licence": "LFW: for research use, as distributed by its authors (vis-www.cs.umass.edu/lfw)",
        "selection": f"LFW people with exactly one photo; {DRAW} drawn with numpy default_rng({SEED}); "
                     f"the first {COHORT_SIZE} (by name) in whom MTCNN found a face",
        "crop": {"size": CROP_SIZE, "margin": MARGIN, "detector": "MTCNN min_face_size 40, thresholds 0.6/0.7/0.7",
                 "box": "central face"},
        "tiles": len(tiles), "columns": COLUMNS,
        "mosaic_sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        "faces": entries,
    }
    COHORT_RECORD.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"{COHORT_IMAGE}: {len(tiles)} faces, {len(data) / 1e6:.2f} MB; record {COHORT_RECORD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
