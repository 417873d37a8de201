"""Open-set matching of probe embeddings against the gallery: best identity, its score, known or unknown."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from facewatch.identity.siamese import HeadError, SiameseHead

# Cosine-similarity thresholds per FaceNet weight set; a probe scoring below it against its best gallery identity
# is "unknown". casia-webface: the mean of the ten thresholds LFW's 10-fold protocol chose with the daemon's
# pipeline (MTCNN central face, margin 32, no mirror; `facewatch eval lfw`: 98.73 ± 0.51 %, per-fold thresholds
# 0.3710..0.3715). A stricter choice for a lock: 0.452 accepts 0.1 % of LFW's different-person pairs (TAR 96.4 %).
# vggface2 cannot be downloaded where these were measured: it borrows the casia-webface value until
# `facewatch eval lfw --weights vggface2` is run on a machine that has it.
COSINE_THRESHOLDS = {"casia-webface": 0.371, "vggface2": 0.371}
# The shipped Siamese heads: weights file and JSON training record (data, split, metrics, threshold) per weight set.
DATA_DIR = Path(__file__).parents[1] / "data"  # facewatch/data: package data shipped in the wheel


@dataclass(frozen=True)
class Match:
    """The decision for one probe: `name` is None for an unknown face; `score` is the best similarity."""

    name: str | None
    score: float


class Matcher(Protocol):
    """Scores probes against gallery embeddings; higher is more similar, in the matcher's own scale."""

    threshold: float

    def similarity(self, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(N, M) similarity of N probe embeddings to M gallery embeddings."""
        ...


@dataclass
class CosineMatcher:
    """Cosine similarity of L2-normalised FaceNet embeddings: the plain, parameter-free baseline."""

    threshold: float

    def similarity(self, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(N, M) cosine similarity; embeddings are already unit length, so this is a dot product."""
        return np.asarray(probes, np.float32) @ np.asarray(gallery, np.float32).T


def siamese_files(weights: str) -> tuple[Path, Path]:
    """(head .npz, training record .json) shipped for embeddings of FaceNet `weights`."""
    return DATA_DIR / f"siamese_{weights}.npz", DATA_DIR / f"siamese_{weights}.json"


@dataclass
class SiameseMatcher:
    """The trained Siamese head: same-person probability in [0, 1] of a probe and a gallery embedding.

    Not the default: on people it never saw it does not beat cosine (LFW 10-fold 98.52 % vs 98.73 %; held-out
    AT&T pairs 98.28 % vs 98.36 % balanced accuracy; see its record in facewatch/data).
    """

    head: SiameseHead
    threshold: float

    @classmethod
    def shipped(cls, weights: str, threshold: float | None = None) -> SiameseMatcher:
        """The head shipped for embeddings of `weights`, at `threshold` or the one measured in its record."""
        head_file, record_file = siamese_files(weights)
        if not head_file.is_file():
            raise HeadError(f"no Siamese head is shipped for {weights} embeddings ({head_file} is missing); "
                            "use matching.method: cosine or train one with: facewatch train-siamese")
        head = SiameseHead.load(head_file)
        if threshold is None:
            try:
                threshold = float(json.loads(record_file.read_text(encoding="utf-8"))["threshold"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise HeadError(f"{record_file} holds no measured threshold ({exc}); set matching.threshold") from exc
        return cls(head, threshold)

    def similarity(self, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(N, M) same-person probability from the head (numpy only, no torch)."""
        return self.head.similarity(probes, gallery)


def decide(matcher: Matcher, probes: np.ndarray, gallery: np.ndarray, names: list[str]) -> list[Match]:
    """For each probe, the gallery person with the highest similarity over their images, or unknown below threshold."""
    if len(probes) == 0:
        return []
    if len(gallery) == 0:
        return [Match(None, 0.0) for _ in range(len(probes))]
    sims = matcher.similarity(probes, gallery)
    best = sims.argmax(axis=1)
    out = []
    for row, col in enumerate(best):
        score = float(sims[row, col])
        out.append(Match(names[col] if score >= matcher.threshold else None, score))
    return out
