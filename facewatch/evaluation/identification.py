"""Open-set identification on folders of people: who is enrolled, who is a stranger, and what the matcher said."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facewatch.evaluation.datasets import ProtocolError
from facewatch.identity.gallery import people_dirs
from facewatch.identity.matching import Match
from facewatch.imageio import image_files


def identity_images(root: Path) -> tuple[list[str], list[str]]:
    """(image keys relative to root, person names) of a folder with one sub-folder of images per person."""
    root = Path(root)
    keys, names = [], []
    for person in people_dirs(root):
        for image in image_files(person):
            keys.append(f"{person.name}/{image.name}")
            names.append(person.name)
    if not keys:
        raise ProtocolError(f"{root} holds no <person>/<image> files (expected one sub-folder of photos per person)")
    return keys, names


@dataclass(frozen=True)


class IdentifySplit:
    """Which images form the gallery of the enrolled people, and which are probes (truth None = stranger)."""

    gallery: list[int]
    probes: list[int]
    truth: list[str | None]
    enrolled: list[str]


def split_identities(names: Sequence[str], enrolled: int, per_person: int, seed: int = 0) -> IdentifySplit:
    """Seeded open-set split: `enrolled` people (among those with more than `per_person` images) get
    `per_person` gallery images each; every other image of theirs and every image of everyone else is a probe."""
    if per_person < 1:
        raise ValueError(f"gallery images per person must be at least 1, got {per_person}")
    people = sorted(set(names))
    eligible = [p for p in people if names.count(p) > per_person]
    if not 1 <= enrolled <= len(eligible):
        raise ValueError(
            f"cannot enroll {enrolled} people: {len(eligible)} of {len(people)} have more than {per_person} "
            f"images (one must be left to probe with)"
        )
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, size=enrolled, replace=False).tolist())
    gallery: list[int] = []
    for person in chosen:
        rows = [i for i, n in enumerate(names) if n == person]
        gallery.extend(sorted(rng.choice(rows, size=per_person, replace=False).tolist()))
    in_gallery = set(gallery)
    probes = [i for i in range(len(names)) if i not in in_gallery]
    truth = [names[i] if names[i] in chosen else None for i in probes]
    return IdentifySplit(gallery, probes, truth, chosen)


@dataclass(frozen=True)


class IdentifyCounts:
    """Outcome of open-set identification: owners named right, named wrong or refused; strangers accepted."""

    correct: int
    wrong: int
    owners_rejected: int
    owners: int
    strangers_accepted: int
    strangers: int

    @property
    def correct_rate(self) -> float:
        """Enrolled people's probes given their own name."""
        return self.correct / self.owners if self.owners else float("nan")

    @property
    def false_accept_rate(self) -> float:
        """Strangers' probes accepted as someone: the number that matters for a screen lock."""
        return self.strangers_accepted / self.strangers if self.strangers else float("nan")

    @property
    def false_reject_rate(self) -> float:
        """Enrolled people's probes refused as unknown."""
        return self.owners_rejected / self.owners if self.owners else float("nan")


def identification_counts(matches: Sequence[Match], truth: Sequence[str | None]) -> IdentifyCounts:
    """Tally decisions against the truth (None = a stranger who must come out unknown)."""
    owner = [(m.name, t) for m, t in zip(matches, truth, strict=True) if t is not None]
    strangers = [m.name for m, t in zip(matches, truth) if t is None]
    return IdentifyCounts(
        correct=sum(name == t for name, t in owner),
        wrong=sum(name is not None and name != t for name, t in owner),
        owners_rejected=sum(name is None for name, _ in owner),
        owners=len(owner),
        strangers_accepted=sum(name is not None for name in strangers),
        strangers=len(strangers),
    )
