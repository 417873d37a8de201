"""Open-set matching of probe embeddings against the gallery: best identity, its score, known or unknown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Cosine-similarity thresholds per FaceNet weight set, from LFW 10-fold verification with this pipeline
# (see README "Accuracy"); a probe scoring below its best gallery identity's threshold is "unknown".
COSINE_THRESHOLDS = {"casia-webface": 0.40, "vggface2": 0.40}


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
