"""`facewatch forget [--yes]`: delete every piece of biometric data facewatch stored, after confirmation.

That is the gallery embedding caches, the photos facewatch enrolled (identity/enrolled.py: never a file it did
not write, never through a link), the enrollment records and calibration files in the data dir, the event and
dry-run logs (they name the identities seen), the eval caches of embeddings and the embedded cohort (embeddings
of the shipped strangers' faces: it is remade from the shipped crops at the next run). The config file and the
model files are never touched.
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
    """What `forget` would delete (files by what they are, photos by person folder) and what it keeps."""

    files: list[tuple[str, Path]] = field(default_factory=list)  # (what it is, path)
    photos: dict[Path, list[Path]] = field(default_factory=dict)
    kept: dict[Path, list[Path]] = field(default_factory=dict)  # a person folder's other files, or a link

    @property
    def empty(self) -> bool:
        """True when nothing is stored."""
        return not (self.files or self.photos)

    def describe(self) -> list[str]:
        """One line per thing stored, in the words the prompt and the report use."""
        lines = [f"{what} {path}" for what, path in self.files if what == "gallery cache"]
        for person, files in self.photos.items():
            lines.append(f"{len(files)} enrolled photo(s) of {person.name} in {person}")
            lines.extend(f"    {path.name}" for path in files)
        lines += [f"{what} {path}" for what, path in self.files if what != "gallery cache"]
        return lines


def find_stored(config: Config) -> Stored:
    """Everything biometric facewatch keeps for this config: caches, the photos it enrolled, records, logs."""
    from facewatch.events import events_path, rotated_paths
    from facewatch.identity.cohort import COHORT_CACHE_PREFIX
    from facewatch.identity.enrolled import Record, gallery_caches, record_path
    from facewatch.identity.gallery import people_dirs
    from facewatch.paths import cache_dir, data_dir, state_dir

    stored = Stored(files=[("gallery cache", p) for p in gallery_caches()])
    record = Record.load(config.gallery_dir)
    for person in people_dirs(config.gallery_dir):
        mine, others = record.owned(person)
        if mine:
            stored.photos[person] = mine
        if others or not mine and person.is_symlink():
            stored.kept[person] = others or [person]
    events, dry_run = events_path(), state_dir() / "dry-run.jsonl"
    logs = [("event log", p) for p in [events, *rotated_paths(events)]]
    logs += [("dry-run log", p) for p in [dry_run, *rotated_paths(dry_run)]]
    # Everything else facewatch writes into its data dir names or embeds people: enrollment records,
    # calibration files (identity/calibration.py), and whatever comes next; the dir holds nothing else.
    listed = {path for _, path in stored.files} | {record_path(config.gallery_dir)}
    own = [p for p in sorted(data_dir().glob("*")) if p.suffix in (".json", ".npz", ".tmp") and p not in listed]
    evals = sorted((cache_dir() / "eval").glob("*.npz"))
    # the embedded cohort, and what a kill mid-write left of it (paths.write_private's temp name)
    cohorts = [*sorted(cache_dir().glob(f"{COHORT_CACHE_PREFIX}*.npz")),
               *sorted(cache_dir().glob(f".{COHORT_CACHE_PREFIX}*.npz.*.tmp"))]
    found = logs + [("data file", p) for p in own] + [("eval cache", p) for p in evals]
    found += [("cohort cache", p) for p in cohorts]
    found.append(("enrollment record", record_path(config.gallery_dir)))  # last: it says what the photos were
    stored.files += [(what, p) for what, p in found if _plain_file(p)]
    return stored


def _plain_file(path: Path) -> bool:
    """A regular file, not a link or FIFO: forget deletes no link (its target is not facewatch's)."""
    return path.is_file() and not path.is_symlink()


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
    """Delete the files, then the person folders they leave empty; print each step and what was kept."""
    for what, path in stored.files:
        if what == "gallery cache":
            path.unlink(missing_ok=True)
            print(f"removed {what} {path}")
    for person, files in stored.photos.items():
        for path in files:
            path.unlink(missing_ok=True)
        left = sorted(p.name for p in person.iterdir())
        if left:
            print(f"removed {len(files)} photo(s) of {person.name}; kept in {person} (not written by facewatch): "
                  f"{', '.join(left)}")
            continue
        person.rmdir()
        print(f"removed {len(files)} photo(s) of {person.name} and their folder {person}")
    for person, others in stored.kept.items():
        if person not in stored.photos:
            print(f"kept {person} (not written by facewatch)")
    for what, path in stored.files:
        if what != "gallery cache":
            path.unlink(missing_ok=True)
            print(f"removed {what} {path}")


def handle(args: argparse.Namespace) -> int:
    """Refuse while `facewatch run` is running (it holds the data), list, confirm, delete; exit 1 if declined."""
    from facewatch.system.instance import AlreadyRunning, InstanceLock

    config = load_config(args.config)
    try:
        with InstanceLock():
            stored = find_stored(config)
            if stored.empty:
                print("nothing to forget: no gallery cache, enrolled photo or event log is stored")
                for person in stored.kept:
                    print(f"kept {person} (not written by facewatch)")
                return 0
            if not _confirm(stored, args.yes):
                print("nothing deleted")
                return 1
            _remove(stored)
    except AlreadyRunning as exc:
        raise UserError(f"{exc}: quit it first, it keeps the gallery in memory and writes the event log") from None
    return 0
