"""Lock and notify decisions from who is in view over time: a pure state machine, time passed in, no clock read.

Rules, checked on every update(now, identities, camera_ok, paused), one per processed frame:
1. An "owner" is any enrolled name; "unknown" (a face that matched nobody) and "unverified" (no face pass yet) are not.
2. Stranger: an unknown present with no owner on every update for >= unknown_seconds locks; one update without resets.
   The run starts at `unknown_since` when given: when that person's box first appeared, since identities ride
   on tracks and no new face evidence arrives between face passes anyway.
3. Onlooker: an unknown beside an owner for >= unknown_seconds (same continuity): per `onlooker`, notify once per
   episode, lock, or nothing.
4. Away (away_seconds > 0): no owner for >= away_seconds since an owner was last seen locks ("owner away").
5. Grace: no lock for grace_seconds after a lock, after unlocked(now), or after a pause ends; a condition still
   holding when the grace ends locks then (a stranger who stays is locked out again: fail safe).
6. After a lock the away clock is disarmed until an owner is seen again or unlocked() is called (no re-lock loop).
7. Paused: no decisions; every timer and episode resets (the away clock is disarmed).
8. Camera lost: one notify per loss episode ("notify"), or one lock per episode once no grace is in force ("lock");
   the face timers reset and the away clock is held (it counts again from the first frame back).
9. "unverified" alone never starts a timer: the face pass will name that person, and a back is not evidence.
Every decision is a Decision(action, reason, at); PolicyRunner carries them out, logs each one, and returns a
Done per decision, so callers learn whether the screen was locked without reading the event log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from facewatch.actions.lock import Locker
from facewatch.actions.notify import Notifier
from facewatch.config import Policy
from facewatch.events import EventLog
from facewatch.tracking.tracks import UNKNOWN, UNVERIFIED

NOTIFY_TITLE = "facewatch"
LOCK_FAILED_TITLE = "facewatch could not lock the screen"


@dataclass(frozen=True)
class Decision:
    """One thing to do: lock the screen or notify the user, why (shown and logged), and the update time it came from."""

    action: Literal["lock", "notify"]
    reason: str
    at: float


def _run_start(holds: bool, since: float | None, now: float) -> float | None:
    """The start of an unbroken run of updates where a condition holds: kept, started now, or cleared."""
    if not holds:
        return None
    return now if since is None else since


class LockPolicy:
    """Turns per-frame identities into lock/notify decisions by the rules in this module's docstring."""

    def __init__(self, settings: Policy) -> None:
        self.settings = settings
        self._stranger_since: float | None = None  # rule 2: first update of the current stranger run
        self._onlooker_since: float | None = None  # rule 3: first update of the current onlooker run
        self._onlooker_told = False  # rule 3: this onlooker episode has had its notification
        self._away_since: float | None = None  # rule 4: last owner sighting (or unlock); None = disarmed
        self._grace_until = -math.inf  # rule 5
        self._was_paused = False  # rule 5: the next unpaused update starts a grace period
        self._camera_handled = False  # rule 8: this camera-loss episode has had its notify or lock

    def unlocked(self, now: float) -> None:
        """The session was unlocked (by someone with the password): start a grace period and the away clock."""
        self._grace_until = max(self._grace_until, now + self.settings.grace_seconds)
        self._away_since = now

    def update(self, now: float, identities: list[str], camera_ok: bool, paused: bool,
               unknown_since: float | None = None) -> list[Decision]:
        """Feed one processed frame: its live tracks' identities (name, "unknown", "unverified"); return decisions.

        unknown_since: when the earliest track now named "unknown" was first seen (rule 2), if known.
        """
        if paused:
            self._reset()
            self._was_paused = True
            return []
        if self._was_paused:
            self._was_paused = False
            self._grace_until = max(self._grace_until, now + self.settings.grace_seconds)
        if not camera_ok:
            return self._camera_lost(now)
        self._camera_handled = False

        owners = sorted({name for name in identities if name not in (UNKNOWN, UNVERIFIED)})
        unknown = UNKNOWN in identities
        if owners:
            self._away_since = now
        start = now if unknown_since is None else min(now, unknown_since)
        self._stranger_since = _run_start(unknown and not owners, self._stranger_since, start)
        self._onlooker_since = _run_start(unknown and bool(owners), self._onlooker_since, start)
        if self._onlooker_since is None:
            self._onlooker_told = False

        if self._held(self._stranger_since, now):
            return self._lock(now, f"unknown face for {now - self._stranger_since:.1f} s")
        if self._held(self._onlooker_since, now):
            return self._onlooker(now, owners)
        away = self.settings.away_seconds
        if away > 0 and not owners and self._away_since is not None and now - self._away_since >= away:
            return self._lock(now, f"owner away for {now - self._away_since:.1f} s")
        return []

    def _held(self, since: float | None, now: float) -> bool:
        """True when a run started at `since` has lasted unknown_seconds."""
        return since is not None and now - since >= self.settings.unknown_seconds

    def _onlooker(self, now: float, owners: list[str]) -> list[Decision]:
        """Rule 3 for a run that has lasted long enough."""
        reason = f"unknown face beside {', '.join(owners)} for {now - self._onlooker_since:.1f} s"
        if self.settings.onlooker == "lock":
            return self._lock(now, reason)
        if self.settings.onlooker == "notify" and not self._onlooker_told:
            self._onlooker_told = True
            return [Decision("notify", reason, now)]
        return []

    def _camera_lost(self, now: float) -> list[Decision]:
        """Rule 8: no frame to judge, so the face timers reset; one notify or lock per loss episode."""
        self._stranger_since = self._onlooker_since = None
        self._onlooker_told = False
        if self._away_since is not None:
            self._away_since = now
        if self._camera_handled:
            return []
        if self.settings.camera_lost == "notify":
            decisions = [Decision("notify", "camera lost", now)]
        else:
            decisions = self._lock(now, "camera lost")
        self._camera_handled = bool(decisions)
        return decisions

    def _lock(self, now: float, reason: str) -> list[Decision]:
        """A lock decision unless a grace period is in force; a lock starts the grace and disarms the away clock."""
        if now < self._grace_until:
            return []
        self._grace_until = now + self.settings.grace_seconds
        self._away_since = None
        return [Decision("lock", reason, now)]

    def _reset(self) -> None:
        """Rule 7: forget every run and episode."""
        self._stranger_since = self._onlooker_since = self._away_since = None
        self._onlooker_told = False
        self._camera_handled = False


@dataclass(frozen=True)
class Done:
    """A decision carried out: the decision, whether it left the screen locked, and the event-log line written."""

    decision: Decision
    locked: bool
    event: dict[str, Any]


class PolicyRunner:
    """Feeds a LockPolicy and carries out its decisions: lock or notify, and one event-log line for each."""

    def __init__(self, policy: LockPolicy, locker: Locker, notifier: Notifier, events: EventLog) -> None:
        self.policy = policy
        self.locker = locker
        self.notifier = notifier
        self.events = events

    def update(self, now: float, identities: list[str], camera_ok: bool, paused: bool,
               unknown_since: float | None = None) -> list[Done]:
        """LockPolicy.update, then act on each decision; returns what was done, in order."""
        decisions = self.policy.update(now, identities, camera_ok, paused, unknown_since)
        return [self._apply(d) for d in decisions]

    def is_locked(self) -> bool | None:
        """Whether the session is locked now, as the locker can tell (None: it cannot)."""
        return self.locker.is_locked()

    def unlocked(self, now: float) -> dict[str, Any]:
        """Tell the policy the session was unlocked (grace period, away clock) and log it."""
        self.policy.unlocked(now)
        return self.events.write("unlocked", t=round(now, 3))

    def _apply(self, decision: Decision) -> Done:
        """Lock (telling the user when no method worked) or notify, then log it with its reason."""
        if decision.action == "notify":
            self.notifier.notify(NOTIFY_TITLE, decision.reason)
            return Done(decision, False, self.events.write("notify", t=round(decision.at, 3), reason=decision.reason))
        result = self.locker.lock(decision.reason)
        if not result.ok:
            self.notifier.notify(LOCK_FAILED_TITLE, f"{decision.reason}: {result.detail}")
        fields = {"detail": result.detail} if result.detail else {}
        event = self.events.write("lock", t=round(decision.at, 3), reason=decision.reason, ok=result.ok,
                                  method=result.method, **fields)
        # A dry run "locks" by recording; only a lock the locker does not deny leaves the screen locked.
        return Done(decision, result.ok and self.locker.is_locked() is not False, event)
