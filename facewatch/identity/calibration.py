"""Per-owner operating points: each enrolled person's accept and unknown scores, from their photos and a cohort.

Rules (cited in code as "calibration rule N"):
1. Impostor scores of a person: each cohort face's best similarity over that person's photos (the score the
   decision uses, matching rule 1). A Gaussian fitted to them gives the score a stranger exceeds with probability
   FAR_KNOWN (0.1 %) and FAR_UNKNOWN (1 %) divided by the number of people enrolled: a stranger is accepted if
   they pass any one person's point, so the targets hold for the whole gallery, not for each person alone.
2. Genuine scores: leave-one-out, each photo's best similarity to the person's other photos; `genuine` is their
   median.
3. A cohort from other cameras underestimates a stranger who shares the owner's camera and light: such a stranger
   scores closer to the owner's own photos. So the point is also held at a fixed share of the way from the cohort's
   mean impostor score to the owner's genuine score: known >= mean + SHARE_KNOWN * (genuine - mean), unknown >=
   mean + SHARE_UNKNOWN * (genuine - mean). The stricter of rules 1 and 3 wins.
4. One photo gives no genuine score: rule 3 takes genuine = 1 (the strictest), and the report asks for more photos.
5. The report states what the point costs on the calibration data: the share of the owner's own leave-one-out
   scores that would be refused (below unknown) or uncertain, and the share of cohort faces accepted.
6. Calibration is recomputed whenever the gallery's embeddings, the cohort or these rules change: the cache
   (0600, user data dir: it names people) is keyed by a hash of all three and never trusted otherwise.
7. Probe-side T-norm (matching rule 6): `probe_z` is the same target seen from the probe, a standard normal's
   1 - FAR_KNOWN / (people x photos) quantile: a probe's score to a person is its best over that person's photos, so
   it must stand out from the probe's own cohort scores by more than the best of that many strangers would.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Callable

import numpy as np

from facewatch.identity.cohort import cohort_cache_path, cohort_embeddings, cohort_key
from facewatch.identity.gallery import Gallery
from facewatch.identity.matching import Matcher, OperatingPoint
from facewatch.paths import data_dir, write_private

log = logging.getLogger("facewatch.calibration")

FAR_KNOWN = 1e-3  # calibration rule 1: strangers named as anyone enrolled
FAR_UNKNOWN = 1e-2  # calibration rule 1: strangers not called unknown (they get a second look)
# Calibration rule 3. Chosen on a split by identity (README "Calibration"): the train half of AT&T (grey), LFW and
# the webcam stills; checked on the other half.
SHARE_KNOWN = 0.65
SHARE_UNKNOWN = 0.55
POOR_SEPARATION = 0.2  # genuine minus the closest cohort stranger below this: ask for better photos
RULES_VERSION = 3  # 2: rule 1's targets shared out over the gallery's people; 3: rule 7


@dataclass(frozen=True)
class OwnerCalibration:
    """One person's operating point and what it costs on their own photos and the cohort (calibration rule 5)."""

    name: str
    photos: int
    known: float
    unknown: float
    probe_z: float  # rule 7
    genuine: float | None  # median leave-one-out score, None with one photo
    genuine_min: float | None
    closest_stranger: float  # highest cohort score against this person
    strangers: int  # cohort size
    refused: float | None  # share of leave-one-out scores below `unknown`
    uncertain: float | None  # share of leave-one-out scores in the band
    cohort_accepted: float  # share of cohort faces at or above `known`

    @property
    def point(self) -> OperatingPoint:
        """The decision scores of matching rules 2 and 6."""
        return OperatingPoint(self.known, self.unknown, self.probe_z)

    @property
    def separation(self) -> float:
        """How far the closest cohort stranger scores below the owner's own photos (1 - closest with one photo)."""
        return (self.genuine if self.genuine is not None else 1.0) - self.closest_stranger

    @property
    def advice(self) -> str | None:
        """What the person should do about their photos, or None when the calibration is sound."""
        if self.photos < 2:
            return "only one photo: the threshold is at its strictest; add 3-5 more photos"
        if self.separation < POOR_SEPARATION or (self.refused or 0) > 0:
            return ("poor separation: add more or better photos (sharp, evenly lit, facing the camera, "
                    "taken with the camera facewatch watches)")
        return None


def calibrate_owner(name: str, photos: np.ndarray, cohort: np.ndarray, matcher: Matcher,
                    people: int = 1) -> OwnerCalibration:
    """The operating point of one of `people` enrolled persons from their photo embeddings and the cohort's
    (calibration rules 1-5)."""
    if people < 1:
        raise ValueError(f"people must be at least 1, got {people}")
    impostor = matcher.similarity(cohort, photos).max(axis=1).astype(np.float64)
    mean, spread = float(impostor.mean()), float(impostor.std())
    normal = NormalDist()
    known = mean + normal.inv_cdf(1 - FAR_KNOWN / people) * spread
    unknown = mean + normal.inv_cdf(1 - FAR_UNKNOWN / people) * spread
    loo = None
    if len(photos) > 1:
        own = matcher.similarity(photos, photos).astype(np.float64)
        np.fill_diagonal(own, -np.inf)
        loo = own.max(axis=1)
    genuine = float(np.median(loo)) if loo is not None else 1.0  # calibration rule 4
    known = max(known, mean + SHARE_KNOWN * (genuine - mean))
    unknown = min(known, max(unknown, mean + SHARE_UNKNOWN * (genuine - mean)))
    return OwnerCalibration(
        name=name, photos=len(photos), known=round(known, 4), unknown=round(unknown, 4),
        probe_z=round(normal.inv_cdf(1 - FAR_KNOWN / (people * len(photos))), 4),
        genuine=None if loo is None else round(genuine, 4),
        genuine_min=None if loo is None else round(float(loo.min()), 4),
        closest_stranger=round(float(impostor.max()), 4), strangers=len(cohort),
        refused=None if loo is None else float(np.mean(loo < unknown)),
        uncertain=None if loo is None else float(np.mean((loo >= unknown) & (loo < known))),
        cohort_accepted=float(np.mean(impostor >= known)),
    )


def calibrate(gallery: Gallery, cohort: np.ndarray, matcher: Matcher) -> dict[str, OwnerCalibration]:
    """Every enrolled person's calibration, the targets shared out over them (calibration rule 1)."""
    names, people = np.asarray(gallery.names), gallery.people
    return {p: calibrate_owner(p, gallery.embeddings[names == p], cohort, matcher, len(people)) for p in people}


def _key(gallery: Gallery, cohort_key: str) -> str:
    """What a calibration depends on (calibration rule 6): rules, cohort, and every person's embeddings."""
    digest = hashlib.sha256(f"v{RULES_VERSION}|{FAR_KNOWN}|{FAR_UNKNOWN}|{SHARE_KNOWN}|{SHARE_UNKNOWN}|"
                            f"{cohort_key}".encode())
    for name, row in zip(gallery.names, np.asarray(gallery.embeddings, np.float32)):
        digest.update(name.encode("utf-8") + b"\0" + row.tobytes())
    return digest.hexdigest()


def cached_calibration(gallery: Gallery, cohort: np.ndarray, cohort_key: str, matcher: Matcher,
                       cache_path: Path) -> dict[str, OwnerCalibration]:
    """calibrate(), reusing the cached result while gallery and cohort are unchanged (calibration rule 6)."""
    key = _key(gallery, cohort_key)
    try:
        data = json.loads(cache_path.read_text(encoding="utf-8"))
        if data.get("key") == key:
            found = {name: OwnerCalibration(**entry) for name, entry in data["people"].items()}
            if sorted(found) == gallery.people:
                return found
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass  # absent, foreign or damaged: recompute
    result = calibrate(gallery, cohort, matcher)
    payload = {"key": key, "people": {name: asdict(c) for name, c in result.items()}}
    try:
        write_private(cache_path, json.dumps(payload, indent=1).encode("utf-8"))
    except OSError as exc:
        log.warning("calibration cache %s not written (%s); it is recomputed next time", cache_path,
                    exc.strerror or exc)
    return result


def calibration_path(embedding_id: str) -> Path:
    """Where a gallery's calibration is cached: the user data dir, since it names people (`facewatch forget`
    removes it)."""
    return data_dir() / f"calibration-{embedding_id}.json"


def calibrate_gallery(gallery: Gallery, embed_crops: Callable[[np.ndarray], np.ndarray], embedding_id: str,
                      matcher: Matcher) -> dict[str, OwnerCalibration]:
    """Calibrate every person of `gallery` against the shipped cohort embedded by `embed_crops`, and set the
    gallery's operating points; CohortError when the cohort files are missing or damaged."""
    cohort = cohort_embeddings(embed_crops, embedding_id, cohort_cache_path(embedding_id))
    result = cached_calibration(gallery, cohort, f"{cohort_key()}|{embedding_id}", matcher,
                                calibration_path(embedding_id))
    gallery.points, gallery.cohort = {name: c.point for name, c in result.items()}, cohort
    for c in result.values():
        if c.advice:
            log.warning("%s: %s", c.name, c.advice)
    return result


def describe(c: OwnerCalibration) -> str:
    """One line for `facewatch enroll` and `facewatch list`: the point, the separation and what it costs."""
    if c.genuine is None:
        own = "one photo, no leave-one-out score"
    else:
        assert c.refused is not None and c.uncertain is not None  # scored together with `genuine`
        own = (f"your photos match each other at {c.genuine:.2f} (lowest {c.genuine_min:.2f}); "
               f"{100 * c.refused:.0f} % of them would be refused, {100 * c.uncertain:.0f} % asked again")
    return (f"named at >= {c.known:.2f}, unknown below {c.unknown:.2f}; {own}; strangers within "
            f"{c.separation:.2f} of you (closest of {c.strangers}: {c.closest_stranger:.2f}; "
            f"{100 * c.cohort_accepted:.1f} % accepted)")
