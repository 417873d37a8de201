"""Open-set matching of probe embeddings against the gallery: best identity, its score, known, uncertain or unknown.

Rules (cited in code as "matching rule N"):
1. A probe's score for a person is its best similarity over that person's photos; the best-scoring person is the
   candidate.
2. Each enrolled person has an operating point (identity/calibration.py): at or above `known` the candidate is
   named; below `unknown` the face is unknown (what locks); in between it is uncertain: the candidate's name rides
   along but is not accepted, and the tracker asks for another look.
3. `matching.threshold` set in the config overrides every person's point with one threshold and no band.
4. A person without an operating point (a gallery nobody calibrated) is held to the strictest fallback, so an
   uncalibrated gallery can only refuse more, never accept more.
5. An uncertain match asks for a second look (tracking/tracks.py rule 5), and that look settles it: known -> the
   name; unknown, or uncertain again -> unknown (fail safe). `settle` is that decision, for the tracker and for
   `facewatch eval identify` alike.
6. Score normalisation on the probe's side (T-norm): a candidate at or above `known` is named only if its score also
   stands `probe_z` standard deviations above the probe's own scores against the impostor cohort; otherwise it is
   uncertain. A face that scores high against everyone (dim, noisy, grey, or from the owner's own camera) is not
   named for being close to the owner too. Without a cohort, or with `probe_z` -inf, the check is off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol

import numpy as np

from facewatch.identity.siamese import HeadError, SiameseHead

# Cosine-similarity thresholds per FaceNet weight set at LFW's best accuracy: not the default decision (per-owner
# calibration is, matching rule 2), kept as the value `facewatch eval lfw` reports. casia-webface: the mean of the
# ten thresholds LFW's 10-fold protocol chose (MTCNN central face, margin 32, no mirror; `facewatch eval lfw`:
# 98.73 ± 0.51 %, per-fold thresholds 0.3710..0.3715). A stricter choice for a lock: 0.452 accepts 0.1 % of LFW's different-person pairs (TAR 96.4 %).
# vggface2 cannot be downloaded where these were measured: it borrows the casia-webface value until
# `facewatch eval lfw --weights vggface2` is run on a machine that has it.
COSINE_THRESHOLDS = {"casia-webface": 0.371, "vggface2": 0.371}
# The shipped Siamese heads: weights file and JSON training record (data, split, metrics, threshold) per weight set.
DATA_DIR = Path(__file__).parents[1] / "data"  # facewatch/data: package data shipped in the wheel


@dataclass(frozen=True)
class Match:
    """The decision for one probe: `name` is None for an unknown face; `score` is the best similarity.

    uncertain: the score fell in the band between unknown and known; `name` is then the best candidate, not accepted.
    """

    name: str | None
    score: float
    uncertain: bool = False


@dataclass(frozen=True)
class OperatingPoint:
    """One person's decision scores (matching rule 2): named at or above `known`, unknown below `unknown`; `probe_z`
    is rule 6's T-norm requirement."""

    known: float
    unknown: float
    probe_z: float = -np.inf


# Matching rule 4: a person nobody calibrated is named only on a near-identical face.
UNCALIBRATED = OperatingPoint(known=0.9, unknown=0.9)


class Matcher(Protocol):
    """Scores probes against gallery embeddings; higher is more similar, in the matcher's own scale."""

    @property
    def threshold(self) -> float | None:
        """Matching rule 3: one threshold for everyone; None = per-person operating points."""
        ...

    def similarity(self, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(N, M) similarity of N probe embeddings to M gallery embeddings."""
        ...


@dataclass
class CosineMatcher:
    """Cosine similarity of L2-normalised FaceNet embeddings: the plain, parameter-free baseline."""

    threshold: float | None = None

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


def decide(matcher: Matcher, probes: np.ndarray, gallery: np.ndarray, names: list[str],
           points: Mapping[str, OperatingPoint] | None = None, cohort: np.ndarray | None = None) -> list[Match]:
    """For each probe, the best gallery person (matching rule 1) judged at that person's operating point (rule 2)
    and, given the impostor `cohort`'s embeddings, by the probe's T-norm (rule 6); or at `matcher.threshold` when it
    is set (rule 3)."""
    if len(probes) == 0:
        return []
    if len(gallery) == 0:
        return [Match(None, 0.0) for _ in range(len(probes))]
    sims = matcher.similarity(probes, gallery)
    cohort_stats = _cohort_stats(matcher, probes, cohort)
    people = sorted(set(names))
    columns = np.asarray([people.index(n) for n in names])
    best = np.full((len(probes), len(people)), -np.inf)
    for column in range(len(people)):
        best[:, column] = sims[:, columns == column].max(axis=1)
    out = []
    for row, stats in zip(best, cohort_stats):
        person = people[int(row.argmax())]
        score = float(row.max())
        if matcher.threshold is not None:
            point = OperatingPoint(matcher.threshold, matcher.threshold)
        else:
            point = (points or {}).get(person, UNCALIBRATED)
        if score >= point.known and _stands_out(score, stats, point.probe_z):
            out.append(Match(person, score))
        elif score >= point.unknown:
            out.append(Match(person, score, uncertain=True))
        else:
            out.append(Match(None, score))
    return out


def _cohort_stats(matcher: Matcher, probes: np.ndarray,
                  cohort: np.ndarray | None) -> list[tuple[float, float] | None]:
    """Rule 6: (mean, standard deviation) of each probe's scores against the cohort; None each without a cohort."""
    if cohort is None or len(cohort) < 2:
        return [None] * len(probes)
    scores = matcher.similarity(probes, cohort).astype(np.float64)
    return list(zip(scores.mean(axis=1).tolist(), scores.std(axis=1).tolist()))


def _stands_out(score: float, stats: tuple[float, float] | None, probe_z: float) -> bool:
    """Rule 6: whether `score` stands `probe_z` standard deviations above the probe's cohort scores (True when
    the check is off)."""
    if stats is None or not np.isfinite(probe_z):
        return True
    mean, spread = stats
    return score - mean >= probe_z * spread


def settle(second_look: Match) -> Match:
    """Matching rule 5: what a second look decides after an uncertain one: its name if known, else unknown."""
    return second_look if second_look.name is not None and not second_look.uncertain else Match(None, second_look.score)
