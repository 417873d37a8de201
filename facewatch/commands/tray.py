"""`facewatch tray`: the watch loop under a tray icon (state colour, pause/resume, enroll me, quit); login start runs this."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from facewatch.config import load_config

log = logging.getLogger("facewatch.ui.tray")
ENROLL_SHOTS = 5


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """The tray watches the configured camera; --no-lock records decisions instead of locking."""
    parser.add_argument("--no-lock", action="store_true", help="dry run: record lock decisions, never lock")


def handle(args: argparse.Namespace) -> int:
    """Take the single-instance lock, build the daemon, and run it under the tray icon until Quit."""
    from facewatch.system.instance import run_exclusively
    from facewatch.ui.tray import TrayError

    config = load_config(args.config)
    try:
        return run_exclusively(lambda: _tray(config, args.no_lock))
    except TrayError as exc:
        print(f"facewatch: {exc}", file=sys.stderr)
        return 1


def _tray(config, dry_run: bool) -> int:
    """Wire the tray's "enroll me now" to a guided capture of the logged-in user, then run."""
    from facewatch.app import build_daemon
    from facewatch.events import events_path
    from facewatch.identity.enroll import enroll_from_frames
    from facewatch.identity.gallery import person_dir
    from facewatch.ui.tray import run_with_tray

    daemon = build_daemon(config, config.camera.source, dry_run=dry_run)

    def enroll_me() -> None:
        """Pause (frees the camera), capture the user's face, reload the gallery, resume."""
        from facewatch.capture import FrameSource

        daemon.pause(None)
        try:
            with FrameSource(config.camera.source, target_fps=4.0) as frames:
                shots = (p.frame for p in iter(lambda: frames.read(1.0), None) if p.frame is not None)
                added = enroll_from_frames(person_dir(config.gallery_dir, getpass.getuser()), shots,
                                           daemon.loop.faces.detector, ENROLL_SHOTS, say=log.info)
            log.info("enrolled %d shot(s) of %s", len(added), getpass.getuser())
            daemon.reload_gallery()
        finally:
            daemon.resume()

    final = run_with_tray(daemon, enroll_me, config.gallery_dir, events_path())
    log.info("%s after %d frames and %d face passes", final.status, final.frames, final.face_passes)
    return 0
