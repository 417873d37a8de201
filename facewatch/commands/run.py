"""`facewatch run`: watch a camera (or replay a video/stream) headless until Ctrl-C, SIGTERM or end of file."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys

from facewatch.config import Config, load_config

log = logging.getLogger("facewatch.run")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """What to watch and how: --camera/--source, --fps, --no-lock; `run` and `tray` both take these."""
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, metavar="INDEX", help="camera index (default: config camera.source)")
    src.add_argument("--source", metavar="PATH_OR_URL", help="replay a video file or watch a stream URL")
    parser.add_argument("--no-lock", action="store_true", help="dry run: record lock decisions, never lock")
    parser.add_argument("--fps", type=_fps, help="frames processed per second (default: config camera.fps)")


def _fps(text: str) -> float:
    """--fps: a finite number above 0 (nan, inf and -1 would stall or spin the loop)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text[:20]!r}")
    return value


def chosen_source(config: Config, args: argparse.Namespace):
    """The source the options name (config camera.source by default), or None after printing why a camera
    cannot be opened."""
    from facewatch.capture import open_error_hint, probe_camera, source_kind

    source = args.source if args.source is not None else (args.camera if args.camera is not None
                                                         else config.camera.source)
    if source_kind(source) == "camera" and not probe_camera(int(source)):
        print(f"facewatch: {open_error_hint(source)}", file=sys.stderr)
        return None
    return source


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Source selection, preview window and dry-run switches."""
    add_source_arguments(parser)
    parser.add_argument("--show", action="store_true", help="open a preview window with boxes, names and count")


def handle(args: argparse.Namespace) -> int:
    """Take the single-instance lock, then watch; a second `run` of the same user exits 1 naming the first's PID."""
    from facewatch.system.instance import run_exclusively

    config = load_config(args.config)
    return run_exclusively(lambda: _watch(config, args))


def _watch(config: Config, args: argparse.Namespace) -> int:
    """Build the loop from the config, install signal handlers, run until done."""
    from facewatch.capture import describe_source

    source = chosen_source(config, args)
    if source is None:
        return 1
    from facewatch.app import build_daemon

    daemon = build_daemon(config, source, fps=args.fps, dry_run=args.no_lock)
    if args.show:
        from facewatch.ui.preview import Preview

        daemon.loop.on_frame.append(Preview(daemon.stop))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: daemon.stop())
    log.info("watching %s (%d people enrolled); Ctrl-C stops", describe_source(source),
             len(daemon.loop.gallery.people))
    final = _run_with_console(daemon)
    log.info("%s after %d frames and %d face passes", final.status, final.frames, final.face_passes)
    return 0


def _run_with_console(daemon):
    """Run the daemon with the live status line and the decisions on stderr (facewatch/ui/console.py)."""
    from facewatch.ui.console import Console

    console = Console(lambda: daemon.state)
    daemon.loop.events.listeners.append(console.on_event)
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(console)  # a log line clears the status line first
    console.start()
    try:
        return daemon.run()
    finally:
        console.close()
        for handler in handlers:
            handler.removeFilter(console)
