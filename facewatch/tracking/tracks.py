"""Person tracks that carry an identity between face passes, so faces need not be checked on every frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facewatch.detectors.base import Detection, Face
from facewatch.tracking.iou import as_boxes, assign, containment_matrix, iou_matrix

UNKNOWN = "unknown"  # a face was seen and matched nobody in the gallery
UNVERIFIED = "unverified"  # how identities() names a track no face pass has named yet
MIN_FACE_INSIDE = 0.5  # least share of a face box inside a person box for the face to name that person


@dataclass(eq=False)
class Track:
    """One person followed across frames; identity None until a face pass names it (name or "unknown")."""

    id: int
    box: np.ndarray
    identity: str | None
    score: float  # match score of the face that set `identity`; 0.0 while unverified
    last_seen: float
    box_at_verify: np.ndarray | None = None  # box when `identity` was last set from a face
    verified_at: float | None = None  # time `identity` was last set from a face
    first_seen: float = 0.0  # when this person's box first appeared


class Tracker:
    """Follows person boxes by IoU between frames; face passes name the tracks, the names ride along."""

    def __init__(self, match_iou: float, reverify_iou: float, max_missed_s: float) -> None:
        """match_iou: least IoU to continue a track; reverify_iou: drift that voids a name; max_missed_s: keep-alive."""
        for key, value in (("match_iou", match_iou), ("reverify_iou", reverify_iou)):
            if not 0 <= value <= 1:
                raise ValueError(f"{key} must be between 0 and 1, got {value}")
        if max_missed_s < 0:
            raise ValueError(f"max_missed_s must be >= 0, got {max_missed_s}")
        self.match_iou, self.reverify_iou, self.max_missed_s = match_iou, reverify_iou, max_missed_s
        self._tracks: list[Track] = []
        self._live: list[Track] = []  # tracks seen in the latest update, in the order of its person boxes
        self._next_id = 1

    def update(self, persons: list[Detection], now: float) -> list[Track]:
        """Match this frame's person boxes to tracks; return the live tracks, one per box, in the boxes' order.

        Unmatched boxes start unverified tracks; a track missed for a frame or two is kept for max_missed_s,
        so the person keeps their identity when the detector finds them again.
        """
        self._tracks = [t for t in self._tracks if now - t.last_seen <= self.max_missed_s]
        boxes = as_boxes([p.box for p in persons])
        pairs = assign(iou_matrix(boxes, [t.box for t in self._tracks]), self.match_iou)
        matched = {i: self._tracks[j] for i, j in pairs}
        self._live = []
        for i, box in enumerate(boxes):
            track = matched.get(i)
            if track is None:
                track = Track(self._next_id, box, identity=None, score=0.0, last_seen=now, first_seen=now)
                self._next_id += 1
                self._tracks.append(track)
            else:
                track.box, track.last_seen = box, now
            self._live.append(track)
        return list(self._live)

    def apply_faces(self, faces: list[Face], identities: list[tuple[str | None, float]], now: float) -> None:
        """Name live tracks from a face pass on the latest frame: identities[i] = (name or None = stranger, score).

        Each face goes to the person box holding most of it (optimal one-to-one, >= MIN_FACE_INSIDE inside).
        Tracks that showed no face keep their previous identity; one never named stays unverified.
        """
        if len(faces) != len(identities):
            raise ValueError(f"got {len(faces)} faces but {len(identities)} identities; they must pair up")
        inside = containment_matrix([f.box for f in faces], [t.box for t in self._live])
        for i, j in assign(inside, MIN_FACE_INSIDE):
            track, (name, score) = self._live[j], identities[i]
            track.identity = UNKNOWN if name is None else name
            track.score, track.box_at_verify, track.verified_at = float(score), track.box.copy(), now

    def needs_reverify(self) -> bool:
        """True when a live track is unverified, or has moved so far since its face pass that its name is stale."""
        return any(
            t.box_at_verify is None or iou_matrix([t.box], [t.box_at_verify])[0, 0] < self.reverify_iou
            for t in self._live
        )

    def unknown_since(self) -> float | None:
        """When the earliest live track named "unknown" first appeared, or None when nobody live is unknown."""
        times = [t.first_seen for t in self._live if t.identity == UNKNOWN]
        return min(times) if times else None

    def identities(self) -> list[str]:
        """The live tracks' identities for State and logs: a name, "unknown", or "unverified"."""
        return [UNVERIFIED if t.identity is None else t.identity for t in self._live]
