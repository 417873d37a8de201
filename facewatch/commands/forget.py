"""`facewatch forget [--yes]`: delete every piece of biometric data facewatch stored, after confirmation.

That is the gallery embedding caches, the enrolled photos (the config's gallery folder) and the event log,
which names the identities seen. The config file and the model files are never touched.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from facewatch.cli import UserError
from facewatch.config import Config, load_config


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Only --yes: skip the confirmation question."""
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


@dataclass
class Stored:
    """What `forget` would delete: cache files, enrolled photos by person folder, the event log."""

    caches: list[Path] = field(default_factory=list)
    photos: dict[Path, list[Path]] = field(default_factory=dict)
    events: Path | None = None

    @property
    def empty(self) -> bool:
        """True when nothing is stored."""
        return not (self.caches or self.photos or self.events)

    def describe(self) -> list[str]:
        """One line per thing stored, in the words the prompt and the report use."""
        lines = [f"gallery cache {path}" for path in self.caches]
        for person, files in self.photos.items():
            lines.append(f"{len(files)} enrolled photo(s) of {person.name} in {person}")
        if self.events is not None:
            lines.append(f"event log {self.events}")
        return lines


def find_stored(config: Config) -> Stored:
    """Everything biometric facewatch keeps for this config: caches (and half-written temp copies), photos, log."""
    from facewatch.engine import gallery_cache_path
    from facewatch.events import events_path
    from facewatch.identity.gallery import people_dirs
    from facewatch.imageio import image_files

    cache = gallery_cache_path(config, "*")  # one cache per FaceNet weight set
    # write_private's temp files (`.<name>.<random>.tmp`) survive a kill mid-write and hold the same data.
    caches = sorted(cache.parent.glob(cache.name)) + sorted(cache.parent.glob(f".{cache.name}.*.tmp"))
    stored = Stored(caches=[p for p in caches if p.is_file()])
    for person in people_dirs(config.gallery_dir):
        files = image_files(person) + sorted(p for p in person.glob(".*.tmp") if p.is_file())
        if files:
            stored.photos[person] = files
    log = events_path()
    stored.events = log if log.is_file() else None
    return stored


def _confirm(stored: Stored, yes: bool) -> bool:
    """--yes, or a "y" typed at the terminal; no terminal and no --yes is an error, never a silent yes."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UserError("refusing to delete biometric data without confirmation; add --yes")
    print("This permanently deletes:")
    for line in stored.describe():
        print(f"  {line}")
    return input("Delete all of it? [y/N] ").strip().lower() in ("y", "yes")


def _remove(stored: Stored) -> None:
    """Delete the files, then the person folders (and the gallery folder) they leave empty; print each step."""
    for path in stored.caches:
        path.unlink(missing_ok=True)
        print(f"removed gallery cache {path}")
    for person, files in stored.photos.items():
        for path in files:
            path.unlink(missing_ok=True)
        left = sorted(p.name for p in person.iterdir())
        if left:
            print(f"removed {len(files)} photo(s) of {person.name}; kept in {person} (not photos): {', '.join(left)}")
            continue
        person.rmdir()
        print(f"removed {len(files)} photo(s) of {person.name} and their folder {person}")
    if stored.events is not None:
        stored.events.unlink(missing_ok=True)
        print(f"removed event log {stored.events}")


def handle(args: argparse.Namespace) -> int:
    """Refuse while `facewatch run` is running (it holds the data), list, confirm, delete; exit 1 if declined."""
    from facewatch.system.instance import AlreadyRunning, InstanceLock

    config = load_config(args.config)
    try:
        with InstanceLock():
            stored = find_stored(config)
            if stored.empty:
                print("nothing to forget: no gallery cache, enrolled photo or event log is stored")
                return 0
            if not _confirm(stored, args.yes):
                print("nothing deleted")
                return 1
            _remove(stored)
    except AlreadyRunning as exc:
        raise UserError(f"{exc}: quit it first, it keeps the gallery in memory and writes the event log") from None
    return 0
