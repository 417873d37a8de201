"""Open-set identification on folders of people: who is enrolled, who is a stranger, and what the matcher said."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np

from facewatch.evaluation.datasets import ProtocolError
from facewatch.identity.gallery import people_dirs
from facewatch.identity.matching import Match, settle
from facewatch.imageio import image_files


def identity_images(root: Path, min_photos: int = 1) -> tuple[list[str], list[str]]:
    """(image keys relative to root, person names) of a folder with one sub-folder of images per person; people
    with fewer than `min_photos` images are left out (e.g. LFW's people with at least 4 photos)."""
    root = Path(root)
    keys, names = [], []
    for person in people_dirs(root):
        images = image_files(person)
        if len(images) < min_photos:
            continue
        for image in images:
            keys.append(f"{person.name}/{image.name}")
            names.append(person.name)
    if not keys:
        raise ProtocolError(f"{root} holds no <person>/<image> files with at least {min_photos} image(s) per person "
                            "(expected one sub-folder of photos per person)")
    return keys, names


@dataclass(frozen=True)
class IdentifySplit:
    """Which images form the gallery of the enrolled people, and which are probes (truth None = stranger)."""

    gallery: list[int]
    probes: list[int]
    truth: list[str | None]
    enrolled: list[str]


def _candidates(names: Sequence[str], usable: Sequence[bool] | None,
                enroll_only: Sequence[bool] | None) -> list[bool]:
    """Which images may be enrolled: a face was found and, with sessions, the image is from the enroll session."""
    return [(usable is None or bool(usable[i])) and (enroll_only is None or bool(enroll_only[i]))
            for i in range(len(names))]


def eligible_people(names: Sequence[str], per_person: int, usable: Sequence[bool] | None = None,
                    enroll_only: Sequence[bool] | None = None) -> list[str]:
    """People who can be enrolled with `per_person` images and still be probed (see split_identities)."""
    candidate = _candidates(names, usable, enroll_only)
    need = per_person + (0 if enroll_only is not None else 1)
    return [p for p in sorted(set(names)) if sum(c for c, name in zip(candidate, names) if name == p) >= need]


def split_identities(names: Sequence[str], enrolled: int, per_person: int, seed: int = 0,
                     usable: Sequence[bool] | None = None, enroll_only: Sequence[bool] | None = None) -> IdentifySplit:
    """Seeded open-set split: `enrolled` people get `per_person` gallery images each; every other image of theirs
    and every image of everyone else is a probe.

    Gallery images come only from `usable` images (a face was found: enrollment refuses the others) and, when
    `enroll_only` is given, only from those images; an enrolled person's other `enroll_only` images are then not
    probes either (enroll from one session, probe with another). An eligible person has more than `per_person`
    candidate images (one to probe with), or exactly `per_person` when sessions are given.
    """
    if per_person < 1:
        raise ValueError(f"gallery images per person must be at least 1, got {per_person}")
    n, people = len(names), sorted(set(names))
    candidate = _candidates(names, usable, enroll_only)
    eligible = eligible_people(names, per_person, usable, enroll_only)
    if not 1 <= enrolled <= len(eligible):
        raise ValueError(
            f"cannot enroll {enrolled} people: {len(eligible)} of {len(people)} have more than {per_person} "
            f"usable images (one must be left to probe with)"
        )
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, size=enrolled, replace=False).tolist())
    gallery: list[int] = []
    for person in chosen:
        rows = [i for i, name in enumerate(names) if name == person and candidate[i]]
        gallery.extend(sorted(rng.choice(rows, size=per_person, replace=False).tolist()))
    in_gallery, enrolled_set = set(gallery), set(chosen)
    probes = [i for i in range(n) if i not in in_gallery
              and not (enroll_only is not None and enroll_only[i] and names[i] in enrolled_set)]
    truth = [names[i] if names[i] in enrolled_set else None for i in probes]
    return IdentifySplit(gallery, probes, truth, chosen)


@dataclass(frozen=True)
class IdentifyCounts:
    """Outcome of open-set identification at the daemon's decision (matching rule 2): what each probe came out as.

    "unknown" is what locks; a stranger "accepted" is one named as an enrolled person; "uncertain" asks again.
    """

    owners: int
    named: int
    misnamed: int
    owners_uncertain: int
    owners_unknown: int
    strangers: int
    accepted: int
    strangers_uncertain: int
    strangers_unknown: int
    no_face: int

    def as_json(self) -> dict:
        """The counts as the `facewatch eval identify --json` object's fields."""
        return {
            "owners": {"total": self.owners, "named": self.named, "misnamed": self.misnamed,
                       "uncertain": self.owners_uncertain, "unknown": self.owners_unknown},
            "strangers": {"total": self.strangers, "accepted": self.accepted,
                          "uncertain": self.strangers_uncertain, "unknown": self.strangers_unknown},
            "no_face": self.no_face,
        }

    def __add__(self, other: IdentifyCounts) -> IdentifyCounts:
        """Counts of two runs together (e.g. over seeds)."""
        return IdentifyCounts(*(a + b for a, b in zip(astuple(self), astuple(other))))


def identification_counts(matches: Sequence[Match | None], truth: Sequence[str | None]) -> IdentifyCounts:
    """Tally decisions against the truth (None = a stranger who must come out unknown; a None match = no face
    was found in that probe, so no decision was made)."""
    pairs = list(zip(matches, truth, strict=True))
    owner = [(m, t) for m, t in pairs if m is not None and t is not None]
    strangers = [m for m, t in pairs if m is not None and t is None]
    settled = [(m, t) for m, t in owner if not m.uncertain and m.name is not None]
    return IdentifyCounts(
        owners=len(owner),
        named=sum(m.name == t for m, t in settled),
        misnamed=sum(m.name != t for m, t in settled),
        owners_uncertain=sum(m.uncertain for m, _ in owner),
        owners_unknown=sum(m.name is None for m, _ in owner),
        strangers=len(strangers),
        accepted=sum(m.name is not None and not m.uncertain for m in strangers),
        strangers_uncertain=sum(m.uncertain for m in strangers),
        strangers_unknown=sum(m.name is None for m in strangers),
        no_face=sum(m is None for m, _ in pairs),
    )


def second_looks(split: IdentifySplit, names: Sequence[str], usable: Sequence[bool], seed: int) -> list[int | None]:
    """For each probe, the position in `split.probes` of another probe of the same person with a face, drawn seeded:
    what the daemon's second look (matching rule 5) sees on photo sets; None when that person has no other."""
    rng = np.random.default_rng([seed, 2])
    by_person: dict[str, list[int]] = {}
    for position, i in enumerate(split.probes):
        if usable[i]:
            by_person.setdefault(names[i], []).append(position)
    looks: list[int | None] = []
    for position, i in enumerate(split.probes):
        others = [p for p in by_person.get(names[i], []) if p != position]
        looks.append(int(others[rng.integers(len(others))]) if others else None)
    return looks


def after_second_look(matches: Sequence[Match | None], looks: Sequence[int | None]) -> list[Match | None]:
    """The daemon's final decisions: each uncertain match settled by its second look (matching rule 5), unknown when
    there is no other photo to look at; certain matches and no-face probes unchanged."""
    final: list[Match | None] = []
    for match, look in zip(matches, looks, strict=True):
        if match is None or not match.uncertain:
            final.append(match)
            continue
        second = matches[look] if look is not None else None
        final.append(settle(second) if second is not None else Match(None, match.score))
    return final
