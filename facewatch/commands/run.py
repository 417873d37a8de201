"""`facewatch run`: watch a camera (or replay a video/stream) headless until Ctrl-C, SIGTERM or end of file."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from facewatch.config import Config, load_config

log = logging.getLogger("facewatch.run")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Source selection, preview window and dry-run switches."""
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, metavar="INDEX", help="camera index (default: config camera.source)")
    src.add_argument("--source", metavar="PATH_OR_URL", help="replay a video file or watch a stream URL")
    parser.add_argument("--show", action="store_true", help="open a preview window with boxes, names and count")
    parser.add_argument("--no-lock", action="store_true", help="dry run: record lock decisions, never lock")
    parser.add_argument("--fps", type=float, help="frames processed per second (default: config camera.fps)")


def handle(args: argparse.Namespace) -> int:
    """Take the single-instance lock, then watch; a second `run` of the same user exits 1 naming the first's PID."""
    from facewatch.system.instance import run_exclusively

    config = load_config(args.config)
    return run_exclusively(lambda: _watch(config, args))


def _watch(config: Config, args: argparse.Namespace) -> int:
    """Build the loop from the config, install signal handlers, run until done."""
    from facewatch.capture import open_error_hint, probe_camera, source_kind

    source = args.source if args.source is not None else (args.camera if args.camera is not None
                                                         else config.camera.source)
    if source_kind(source) == "camera" and not probe_camera(int(source)):
        print(f"facewatch: {open_error_hint(source)}", file=sys.stderr)
        return 1
    from facewatch.app import build_daemon

    daemon = build_daemon(config, source, fps=args.fps, dry_run=args.no_lock)
    if args.show:
        from facewatch.ui.preview import Preview

        daemon.loop.on_frame.append(Preview(daemon.stop))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: daemon.stop())
    log.info("watching %s (%d people enrolled); Ctrl-C stops", source, len(daemon.loop.gallery.people))
    final = daemon.run()
    log.info("%s after %d frames and %d face passes", final.status, final.frames, final.face_passes)
    return 0
