"""The JSON-lines event log: one line per decision (face pass, count change, camera state, lock), user-only.

 1. A write that fails or would block (a full disk, a FIFO or link planted at the name) never stops the loop:
    the file is opened non-blocking and must be a regular file (paths.open_private); events then stay in memory.
 2. The log is capped: past `max_bytes` it is renamed to events.jsonl.1 (older ones shift to .2 ... .`keep`,
    the oldest dropped), so a long run never fills the disk; keep=0 just starts the file again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import IO, Any, Callable

from facewatch.paths import open_private_append, state_dir

log = logging.getLogger("facewatch.events")

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 3


def events_path() -> Path:
    """Where `facewatch run` keeps its event log (it names identities): <user state dir>/events.jsonl."""
    return state_dir() / "events.jsonl"


def rotated_paths(path: Path) -> list[Path]:
    """The rotated copies of a log that exist now (`<name>.1`, `<name>.2`, ...), for `forget`."""
    return sorted(p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit() and not p.is_dir())


class EventLog:
    """Appends events to `path` (created 0600) and keeps the last one for the tray; a write failure never stops the daemon."""

    def __init__(self, path: Path | None, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.last: dict[str, Any] | None = None
        self.failed = False
        self._file: IO[str] | None = None
        self._size = 0
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
                self._file = open_private_append(self.path)  # rule 1
                self._size = self.path.stat().st_size
            line = json.dumps(event, separators=(",", ":")) + "\n"  # ASCII: one character, one byte
            self._file.write(line)
            self._file.flush()
            self._size += len(line)
            if self._size >= self.max_bytes:
                self._rotate()
        except OSError as exc:
            if not self.failed:  # say it once: a full disk must not flood the console either
                log.warning("event log %s not writable (%s); events are kept in memory only", self.path, exc)
            self.failed = True
            self.close()
        return event

    def _rotate(self) -> None:
        """Rule 2: shift the full log to .1 (renames replace names, never write through a planted link)."""
        self.close()
        path = self.path
        assert path is not None  # rotation follows a write, and write() returns early without a path
        if self.keep < 1:
            os.unlink(path)
            return
        older = path.with_name(f"{path.name}.{self.keep}")
        if older.exists() or older.is_symlink():
            os.unlink(older)
        for n in range(self.keep - 1, 0, -1):
            src = path.with_name(f"{path.name}.{n}")
            if src.exists() or src.is_symlink():
                os.replace(src, path.with_name(f"{path.name}.{n + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))

    def close(self) -> None:
        """Close the file; a later write reopens it."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
