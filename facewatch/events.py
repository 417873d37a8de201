"""The JSON-lines event log: one line per decision (face pass, count change, camera state, lock), user-only."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from facewatch.paths import open_private_append, state_dir

log = logging.getLogger("facewatch.events")


def events_path() -> Path:
    """Where `facewatch run` keeps its event log (it names identities): <user state dir>/events.jsonl."""
    return state_dir() / "events.jsonl"


class EventLog:
    """Appends events to `path` (created 0600) and keeps the last one for the tray; a write failure never stops the daemon."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.last: dict[str, Any] | None = None
        self.failed = False
        self._file = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # each event, as written (the console)

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record one event (wall-clock time added) and return it."""
        event = {"time": round(time.time(), 3), "event": kind, **fields}
        self.last = event
        for listener in self.listeners:
            listener(event)
        if self.path is None:
            return event
        try:
            if self._file is None:
                self._file = open_private_append(self.path)
            self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as exc:
            if not self.failed:  # say it once: a full disk must not flood the console either
                log.warning("event log %s not writable (%s); events are kept in memory only", self.path, exc)
            self.failed = True
            self.close()
        return event

    def close(self) -> None:
        """Close the file; a later write reopens it."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
