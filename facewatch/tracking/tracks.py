"""Person tracks that carry an identity between face passes, so faces need not be checked on every frame.

The Tracker is the only writer of Track. Rules:
1. Person boxes continue tracks by IoU (optimal one-to-one, >= match_iou); an unmatched box starts an unverified
   track; a track missed for up to max_missed_s is kept, so a person keeps their name through a missed frame.
2. A face pass names the track holding most of each face (>= MIN_FACE_INSIDE of it inside, one-to-one): the
   gallery name, or "unknown". A track that showed no face keeps what it had.
3. Every processed frame, each track named as an enrolled person is checked for continuity (tracking/continuity.py).
   On a failure the name is suspended at once: identity None, shown and judged as "unverified", never as the
   owner; `suspended_at` records when; an urgent face pass is asked for (rule 8).
4. Only enrolled names are suspended: "unknown" already counts against the owner, and suspending it would restart
   a stranger's clock. A scene cut still asks for an urgent pass, so "unknown" does not stay on someone else.
5. An uncertain match (a score in identity/matching.py's band between unknown and known) names nobody: a name the track had is suspended as in rule 3, and an urgent pass is asked for. The next pass
   that sees the face decides: known -> that name, unknown -> "unknown", uncertain again -> "unknown" (fail safe).
6. A track whose identity is replaced (say owner -> "unknown") restarts first_seen: at the suspension if there was
   one, else now. A newcomer never inherits the previous person's time in view, so durations in messages are true.
7. Liveness verdicts (identity/liveness.py) are applied here: spoof -> "unknown", its first_seen the face pass
   that named it; undecided -> unverified again (the face pass retries); live -> no change. A verdict about a
   name the track no longer carries is ignored.
8. Face passes asked for: urgent (served on the next update whatever the timers, once) after rules 3-5;
   otherwise while a live track is unverified, or has drifted below reverify_iou from its box at its last pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facewatch.detectors.base import Detection, Face
from facewatch.identity.matching import Match, settle
from facewatch.tracking.continuity import APPEARANCE_CHANGED, SCENE_CUT, ContinuityCheck
from facewatch.tracking.iou import as_boxes, assign, containment_matrix, iou_matrix

UNKNOWN = "unknown"  # a face was seen and matched nobody in the gallery
UNVERIFIED = "unverified"  # how identities() names a track without an accepted name (none yet, suspended, uncertain)
UNCERTAIN = "uncertain"  # rule 5: the reason logged when an uncertain match withholds a name
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
    first_seen: float = 0.0  # when this person's box first appeared, or their identity replaced another (rule 6)
    suspended_name: str | None = None  # rules 3 and 5: the name withheld until a face pass confirms it
    suspended_at: float | None = None  # when that name was withheld
    uncertain: bool = False  # rule 5: the latest face pass that saw this track was uncertain
    signature: np.ndarray | None = None  # rule 3: appearance at the face pass that named it (enrolled names only)


@dataclass(frozen=True)
class Suspension:
    """A name withheld from a track (rules 3 and 5): which track, the name, why, and when."""

    track: int
    name: str
    reason: str
    at: float


class Tracker:
    """Follows person boxes by IoU between frames; face passes name the tracks, the names ride along while they
    still look like the person named (rules in this module's docstring)."""

    def __init__(self, match_iou: float, reverify_iou: float, max_missed_s: float,
                 continuity: ContinuityCheck | None = None) -> None:
        """match_iou: least IoU to continue a track; reverify_iou: drift that voids a name; max_missed_s: keep-alive;
        continuity: the per-frame check of rule 3 (None: names ride on box overlap alone, for tests of rule 1)."""
        for key, value in (("match_iou", match_iou), ("reverify_iou", reverify_iou)):
            if not 0 <= value <= 1:
                raise ValueError(f"{key} must be between 0 and 1, got {value}")
        if max_missed_s < 0:
            raise ValueError(f"max_missed_s must be >= 0, got {max_missed_s}")
        self.match_iou, self.reverify_iou, self.max_missed_s = match_iou, reverify_iou, max_missed_s
        self.continuity = continuity
        self.suspensions: list[Suspension] = []  # names withheld by the latest update or face pass, for the log
        self._tracks: list[Track] = []
        self._live: list[Track] = []  # tracks seen in the latest update, in the order of its person boxes
        self._urgent: str | None = None  # rule 8: why an urgent face pass is wanted; cleared by the next pass
        self._next_id = 1

    def update(self, persons: list[Detection], now: float, frame: np.ndarray | None = None) -> list[Track]:
        """Match this frame's person boxes to tracks (rule 1) and check the named ones on `frame` (rules 3-4);
        return the live tracks, one per box, in the boxes' order."""
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
        self.suspensions = []
        if frame is not None and self.continuity is not None:
            self._check_continuity(frame, now)
        return list(self._live)

    def _check_continuity(self, frame: np.ndarray, now: float) -> None:
        """Rules 3-4: suspend every named track that no longer looks like its signature, all of them on a cut."""
        assert self.continuity is not None  # update() calls this only with a continuity check
        cut = self.continuity.cut(frame)
        if cut:
            self._urgent = SCENE_CUT
        for track in self._live:
            if track.signature is None:
                continue
            if cut:
                self._withhold(track, SCENE_CUT, now)
            elif self.continuity.changed(frame, track.box, track.signature):
                self._withhold(track, APPEARANCE_CHANGED, now)

    def _withhold(self, track: Track, reason: str, now: float) -> None:
        """Rules 3 and 5: take an enrolled name off a track until a face pass confirms it; ask for that pass now."""
        self._urgent = reason
        if track.identity in (None, UNKNOWN):
            return
        self.suspensions.append(Suspension(track.id, track.identity, reason, now))
        track.suspended_name, track.identity, track.signature = track.identity, None, None
        if track.suspended_at is None:
            track.suspended_at = now

    def apply_faces(self, faces: list[Face], matches: Sequence[Match], now: float,
                    frame: np.ndarray | None = None) -> list[int]:
        """Name live tracks from a face pass on the latest frame (rules 2, 5, 6); matches[i] is faces[i]'s.

        frame: the frame the pass ran on, for the signatures of rule 3. Returns the ids of the tracks named.
        """
        if len(faces) != len(matches):
            raise ValueError(f"got {len(faces)} faces but {len(matches)} matches; they must pair up")
        self._urgent, self.suspensions = None, []
        inside = containment_matrix([f.box for f in faces], [t.box for t in self._live])
        named = []
        for i, j in assign(inside, MIN_FACE_INSIDE):
            track, match = self._live[j], matches[i]
            if match.uncertain and not track.uncertain and track.identity != UNKNOWN:
                track.uncertain = True  # rule 5: one borderline look names nobody; the next look decides
                self._withhold(track, UNCERTAIN, now)
                continue
            name = settle(match).name or UNKNOWN
            self._name(track, name, match.score, now, frame)
            named.append(track.id)
        return named

    def _name(self, track: Track, name: str, score: float, now: float, frame: np.ndarray | None) -> None:
        """Give a track the name a face pass found (rule 6 for a replaced identity) and sign it (rule 3)."""
        previous = track.identity or track.suspended_name
        if previous is not None and previous != name:
            track.first_seen = now if track.suspended_at is None else track.suspended_at
        track.identity, track.score, track.box_at_verify, track.verified_at = name, float(score), track.box.copy(), now
        track.suspended_name, track.suspended_at, track.uncertain = None, None, False
        if frame is not None and self.continuity is not None and name != UNKNOWN:
            track.signature = self.continuity.sign(frame, track.box)
        else:
            track.signature = None

    def apply_liveness(self, track_id: int, name: str, decision: str) -> None:
        """Rule 7: what a liveness verdict ("live", "spoof", "undecided") about `name` on a track does to it."""
        track = next((t for t in self._tracks if t.id == track_id), None)
        if track is None or track.identity != name or decision == "live":
            return
        if decision == "spoof":
            track.identity, track.first_seen = UNKNOWN, track.verified_at or track.first_seen
        else:
            track.identity, track.box_at_verify = None, None
        track.signature = None

    def face_pass_request(self) -> tuple[str, bool] | None:
        """Rule 8: (reason, urgent) when a face pass is wanted for the live tracks, else None."""
        if self._urgent is not None:
            return self._urgent, True
        unnamed = any(t.identity is None for t in self._live)
        return ("reverify", False) if unnamed or self.needs_reverify() else None

    def needs_reverify(self) -> bool:
        """True when a live track is unverified, or has moved so far since its face pass that its name is stale."""
        return any(
            t.box_at_verify is None or iou_matrix([t.box], [t.box_at_verify])[0, 0] < self.reverify_iou
            for t in self._live
        )

    @property
    def withheld(self) -> bool:
        """True while a live track's name is suspended or uncertain (the loop keeps its active fps meanwhile)."""
        return any(t.suspended_name is not None or t.uncertain for t in self._live)

    def unknown_since(self) -> float | None:
        """When the earliest live track named "unknown" first appeared, or None when nobody live is unknown."""
        times = [t.first_seen for t in self._live if t.identity == UNKNOWN]
        return min(times) if times else None

    def identities(self) -> list[str]:
        """The live tracks' identities for State and logs: a name, "unknown", or "unverified" (rules 3 and 5)."""
        return [UNVERIFIED if t.identity is None else t.identity for t in self._live]
