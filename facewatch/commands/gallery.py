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
        else:
            print_calibration(load_config(args.config))
        return 0
    try:
        person = person_dir(root, args.name)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return _remove(person, args.yes)


def print_calibration(config, only: str | None = None) -> None:
    """Each enrolled person's operating point and separation from the cohort of strangers (or just `only`'s),
    with what to do when it is poor; the daemon calibrates the very same way at start."""
    from facewatch.engine import (
        choose_engine, gallery_cache_path, gallery_model_id, load_face_pipeline, load_matcher,
    )
    from facewatch.identity.calibration import FAR_KNOWN, calibrate_gallery, describe
    from facewatch.identity.gallery import load_gallery

    faces, weights = load_face_pipeline(config, choose_engine(config))
    gallery = load_gallery(config.gallery_dir, faces.embeddings_only, gallery_cache_path(config, weights),
                           gallery_model_id(weights))
    matcher = load_matcher(config, weights)
    calibration = calibrate_gallery(gallery, faces.embed_crops, gallery_model_id(weights), matcher)
    print(f"calibration ({weights}; strangers named at most {100 * FAR_KNOWN:g} % of the time):"
          if matcher.threshold is None else f"matching.threshold {matcher.threshold} overrides the calibration:")
    for name, c in sorted(calibration.items()):
        if only is None or name == only:
            print(f"  {name}: {c.photos} photo(s) usable; {describe(c)}")
            if c.advice:
                print(f"    -> {c.advice}")
    for problem in gallery.problems:
        print(f"  photo not used: {problem}")


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
