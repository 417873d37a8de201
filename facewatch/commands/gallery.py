"""`facewatch list` and `facewatch remove NAME`: what the gallery holds, and deleting a person on request."""

from __future__ import annotations

import argparse
import shutil
import sys

from facewatch.cli import UserError
from facewatch.config import load_config
from facewatch.identity.gallery import people_dirs, person_dir
from facewatch.imageio import image_files


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """`list` has no options; `remove` takes the name and --yes."""
    if name == "remove":
        parser.add_argument("name", help="the enrolled person to remove")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def handle(args: argparse.Namespace) -> int:
    """Dispatch on the command name."""
    root = load_config(args.config).gallery_dir
    if args.command == "list":
        people = people_dirs(root)
        print(f"gallery: {root}")
        for person in people:
            print(f"  {person.name}: {len(image_files(person))} photo(s)")
        if not people:
            print("  (nobody enrolled: facewatch enroll NAME --images PHOTO...)")
        return 0
    try:
        person = person_dir(root, args.name)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return _remove(person, args.yes)


def _remove(person, yes: bool) -> int:
    """Delete one person's folder after confirmation (or --yes)."""
    if not person.is_dir():
        raise UserError(f"nobody named {person.name!r} is enrolled (see: facewatch list)")
    count = len(image_files(person))
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete {person} without confirmation; add --yes")
        answer = input(f"Delete {person.name} and {count} photo(s) in {person}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    shutil.rmtree(person)
    print(f"removed {person.name} ({count} photo(s))")
    return 0
