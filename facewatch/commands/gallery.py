"""`facewatch list` and `facewatch remove NAME`: what the gallery holds, and deleting a person on request."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facewatch.cli import UserError
from facewatch.config import load_config
from facewatch.identity.enrolled import GalleryBusy, Record, delete_photos, gallery_caches, writer
from facewatch.identity.gallery import drop_cached, people_dirs, person_dir
from facewatch.imageio import image_files


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """`list` has no options; `remove` takes the name and --yes."""
    if name == "remove":
        parser.add_argument("name", help="the enrolled person to remove")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def handle(args: argparse.Namespace) -> int:
    """Dispatch on the command name."""
    config = load_config(args.config)
    root = config.gallery_dir
    if args.command == "list":
        people = people_dirs(root)
        print(f"gallery: {root}")
        for person in people:
            print(f"  {shown_name(person.name)}: {len(image_files(person))} photo(s)")
        if not people:
            print("  (nobody enrolled: facewatch enroll NAME --images PHOTO...)")
        elif any(image_files(person) for person in people):  # someone to calibrate
            print_calibration(config)
        return 0
    try:
        person = person_dir(root, args.name)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    try:
        with writer(root):
            return _remove(root, person, args.yes)
    except GalleryBusy as exc:
        raise UserError(str(exc)) from None


def shown_name(name: str) -> str:
    """A folder name as one line: one planted with a newline or escape is shown quoted, not obeyed."""
    return name if name.isprintable() else repr(name)


def print_calibration(config, only: str | None = None) -> None:
    """Each enrolled person's operating point and separation from the cohort of strangers (or just `only`'s),
    with what to do when it is poor; the daemon calibrates the very same way at start."""
    from facewatch.app import calibrated_gallery
    from facewatch.engine import choose_engine, load_face_pipeline, load_matcher
    from facewatch.identity.calibration import FAR_KNOWN, describe
    from facewatch.identity.cohort import CohortError
    from facewatch.weights.registry import ModelError

    try:
        faces, weights = load_face_pipeline(config, choose_engine(config))
        matcher = load_matcher(config, weights)
        gallery, calibration = calibrated_gallery(config, faces, weights, matcher)
    except (ModelError, CohortError, FileNotFoundError) as exc:  # the photos are kept; the daemon calibrates later
        print(f"calibration: not available yet: {exc}")
        return
    print(f"calibration ({weights}; strangers named as anyone enrolled at most {100 * FAR_KNOWN:g} % of the time):"
          if matcher.threshold is None else f"matching.threshold {matcher.threshold} overrides the calibration:")
    for name, c in sorted(calibration.items()):
        if only is None or name == only:
            print(f"  {name}: {c.photos} photo(s) usable; {describe(c)}")
            if c.advice:
                print(f"    -> {c.advice}")
    for problem in gallery.problems:
        print(f"  photo not used: {problem}")


def _remove(root: Path, person: Path, yes: bool) -> int:
    """Delete the photos facewatch enrolled for one person (and the folder if that empties it), after
    confirmation (or --yes), and drop their embeddings from every gallery cache at once."""
    if person.is_symlink():
        raise UserError(f"{person} is a link to another folder; facewatch deletes only folders it created "
                        "(remove the link yourself)")
    if not person.is_dir():
        raise UserError(f"nobody named {person.name!r} is enrolled (see: facewatch list)")
    record = Record.load(root)
    mine, others = record.owned(person)
    if not mine:
        raise UserError(f"{person} holds no photo facewatch enrolled; nothing to remove (its files are yours)")
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete {person} without confirmation; add --yes")
        print(f"This deletes {len(mine)} photo(s) of {person.name} that facewatch enrolled:")
        for path in mine:
            print(f"  {path}")
        if others:
            print(f"and keeps {len(others)} other item(s) in {person}: {', '.join(p.name for p in others)}")
        answer = input(f"Delete {len(mine)} photo(s) of {person.name}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    digests = delete_photos(mine)
    record.drop(mine)
    record.save()
    drop_cached(gallery_caches(), digests)
    if others:
        print(f"removed {len(mine)} photo(s) of {person.name}; kept in {person}: {', '.join(p.name for p in others)}")
    else:
        person.rmdir()
        print(f"removed {person.name} ({len(mine)} photo(s))")
    return 0
