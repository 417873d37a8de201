"""The dry-run recorder: a Locker and Notifier that records requests instead of acting."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from facewatch.actions.lock import LockResult
from facewatch.paths import open_private_append


@dataclass(frozen=True)


class Recorded:
    """One action the dry-run recorder received: when (epoch s), what ("lock" or "notify"), and why."""

    time: float
    action: str
    reason: str


class DryRunRecorder:
    """A Locker and Notifier that records requests instead of acting: for tests and `facewatch run --no-lock`.

    With `path`, each entry is also appended as one JSON line to a file created 0600 (it names people).
    """

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.entries: list[Recorded] = []
        self._clock = clock

    def _record(self, action: str, reason: str) -> None:
        entry = Recorded(self._clock(), action, reason)
        self.entries.append(entry)
        if self.path is not None:
            with open_private_append(self.path) as f:
                f.write(json.dumps(asdict(entry)) + "\n")

    @property
    def available(self) -> bool:
        """Always: recording cannot be missing."""
        return True

    def is_locked(self) -> bool:
        """Never: the recorder does not lock, so the daemon goes on watching after a recorded lock."""
        return False

    def lock(self, reason: str) -> LockResult:
        """Record a lock request; the screen stays unlocked."""
        self._record("lock", reason)
        return LockResult(True, "dry-run", "recorded; the screen was not locked")

    def notify(self, title: str, body: str) -> None:
        """Record a notification as "title: body"."""
        self._record("notify", f"{title}: {body}")

    def describe(self) -> str:
        """Say that nothing is locked, and where the record goes."""
        where = f", recorded to {self.path}" if self.path is not None else ""
        return f"dry run: lock requests are recorded, the screen is not locked{where}"
