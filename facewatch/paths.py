"""Per-user directories and private (0600) file writes, the one place facewatch decides where data lives."""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import platformdirs

from facewatch import APP


def _base(kind: str) -> Path:
    """Return the user directory of one kind; FACEWATCH_HOME (tests, portable installs) overrides them all."""
    home = os.environ.get("FACEWATCH_HOME")
    if home:
        return Path(home) / kind
    finder = {
        "config": platformdirs.user_config_dir,
        "data": platformdirs.user_data_dir,
        "state": platformdirs.user_state_dir,
        "cache": platformdirs.user_cache_dir,
    }[kind]
    return Path(finder(APP))


def config_dir() -> Path:
    """Where the user's config.yaml lives."""
    return _base("config")


def data_dir() -> Path:
    """Where the gallery and its embedding cache live (biometric data: user-only)."""
    return _base("data")


def state_dir() -> Path:
    """Where the event log and the single-instance lock live."""
    return _base("state")


def cache_dir() -> Path:
    """Where downloaded and converted model files live by default."""
    return _base("cache")


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed, user-only (0700) for the directories facewatch creates."""
    missing = list(itertools.takewhile(lambda d: not d.exists(), [path, *path.parents]))
    for directory in reversed(missing):  # mkdir(parents=True) would give the parents the umask's mode (0755)
        directory.mkdir(mode=0o700, exist_ok=True)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, created 0600: a crash mid-write leaves the old file intact."""
    private_dir(path.parent)
    # mkstemp creates the file 0600, so the data is never readable by others, even briefly.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_private_append(path: Path):
    """Open `path` for appending text, creating it 0600 if new (event logs hold identities)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")
