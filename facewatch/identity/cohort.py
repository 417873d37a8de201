"""The impostor cohort: shipped face crops of people nobody enrolls, embedded with whatever FaceNet the user runs.

Rules (cited in code as "cohort rule N"):
1. The crops ship in the package as one mosaic (cohort_faces.jpg) with its provenance (cohort_faces.json, written
   by scripts/build_cohort.py): aligned 160x160 crops at the pipeline's margin, so no face detector runs on them.
2. The mosaic's sha256 must match the record before it is decoded; a missing or altered file is a CohortError that
   names it and says how to get a good copy. Nothing is guessed from a damaged cohort.
3. Embeddings are computed with the user's own weights and pre-processing (so every weight set is calibrated,
   vggface2 included) and cached in the cache dir keyed by mosaic hash and embedding id; a cache that does not
   match, or fails to load, is recomputed, never trusted. The cohort is public faces, so the cache names no user.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facewatch.paths import cache_dir, write_private

log = logging.getLogger("facewatch.cohort")

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
COHORT_IMAGE = DATA_DIR / "cohort_faces.jpg"
COHORT_RECORD = DATA_DIR / "cohort_faces.json"
COHORT_CACHE_PREFIX = "cohort-"  # + embedding id + .npz, in the user cache dir: the embedded cohort
TILE = 160  # the FaceNet input size: one aligned crop per tile
MARGIN = 32  # the crop margin the tiles were cut with (the face pipeline's CROP_MARGIN)
COLUMNS = 20
_REBUILD = ("reinstall facewatch (pip install --force-reinstall facewatch), or in a source checkout restore it "
            "with `git checkout facewatch/data/` or rebuild it with scripts/build_cohort.py")


class CohortError(RuntimeError):
    """The shipped cohort cannot be used; the message names the file and how to get a good one."""


def _record() -> dict:
    """The cohort's provenance record (tile count, mosaic hash); CohortError if it is missing or unreadable."""
    try:
        record = json.loads(COHORT_RECORD.read_text(encoding="utf-8"))
        int(record["tiles"]), str(record["mosaic_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CohortError(f"cohort record {COHORT_RECORD} is missing or unreadable ({exc}); {_REBUILD}") from None
    return record


def cohort_key() -> str:
    """The shipped cohort's identity (its mosaic hash): part of every cache key that depends on it."""
    return str(_record()["mosaic_sha256"])


def cohort_crops() -> np.ndarray:
    """(N, 160, 160, 3) uint8 RGB crops of the shipped cohort, after checking the mosaic's hash (cohort rule 2)."""
    record = _record()
    try:
        data = COHORT_IMAGE.read_bytes()
    except OSError as exc:
        raise CohortError(f"cohort faces {COHORT_IMAGE} cannot be read ({exc.strerror or exc}); {_REBUILD}") from None
    if hashlib.sha256(data).hexdigest() != record["mosaic_sha256"]:
        raise CohortError(f"cohort faces {COHORT_IMAGE} do not match the sha256 in {COHORT_RECORD.name} "
                          f"(corrupt or altered); {_REBUILD}")
    mosaic = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    n = int(record["tiles"])
    rows = -(-n // COLUMNS)
    if mosaic is None or mosaic.shape[:2] != (rows * TILE, COLUMNS * TILE):
        raise CohortError(f"cohort faces {COHORT_IMAGE} do not decode to {n} tiles; {_REBUILD}")
    mosaic = cv2.cvtColor(mosaic, cv2.COLOR_BGR2RGB)
    tiles = mosaic.reshape(rows, TILE, COLUMNS, TILE, 3).transpose(0, 2, 1, 3, 4).reshape(-1, TILE, TILE, 3)
    return np.ascontiguousarray(tiles[:n])


def cohort_cache_path(embedding_id: str) -> Path:
    """Where the cohort's embeddings for one embedding id are cached (user cache dir; `forget` deletes them)."""
    return cache_dir() / f"{COHORT_CACHE_PREFIX}{embedding_id}.npz"


def cohort_embeddings(embed_crops: Callable[[np.ndarray], np.ndarray], embedding_id: str,
                      cache_path: Path) -> np.ndarray:
    """The cohort embedded by `embed_crops` (the pipeline's own pre-processing), cached per `embedding_id`
    (cohort rule 3)."""
    key = f"{cohort_key()}|{embedding_id}"
    try:
        with np.load(cache_path, allow_pickle=False) as cached:
            if str(cached["key"]) == key and cached["embeddings"].ndim == 2:
                return np.asarray(cached["embeddings"], np.float32)
    except (OSError, ValueError, KeyError):
        pass  # absent, foreign or damaged: embed again
    log.info("embedding the %s-face impostor cohort with %s (once per weight set)", _record()["tiles"], embedding_id)
    embeddings = np.asarray(embed_crops(cohort_crops()), np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, key=np.array(key), embeddings=embeddings)
    try:
        write_private(cache_path, buffer.getvalue())
    except OSError as exc:
        log.warning("cohort cache %s not written (%s); it is embedded again next time", cache_path, exc.strerror or exc)
    return embeddings
