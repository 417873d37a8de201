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
    from facewatch.instance import AlreadyRunning, InstanceLock

    config = load_config(args.config)
    try:
        with InstanceLock():
            return _watch(config, args)
    except AlreadyRunning as exc:
        print(exc, file=sys.stderr)
        return 1


def _watch(config: Config, args: argparse.Namespace) -> int:
    """Build the loop from the config, install signal handlers, run until done."""
    from facewatch.capture import open_error_hint, probe_camera, source_kind

    source = args.source if args.source is not None else (args.camera if args.camera is not None
                                                         else config.camera.source)
    if source_kind(source) == "camera" and not probe_camera(int(source)):
        print(f"facewatch: {open_error_hint(source)}", file=sys.stderr)
        return 1
    daemon = build_daemon(config, source, fps=args.fps, dry_run=args.no_lock)
    if args.show:
        from facewatch.preview import Preview

        daemon.loop.on_frame.append(Preview(daemon.stop))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: daemon.stop())
    log.info("watching %s (%d people enrolled); Ctrl-C stops", source, len(daemon.loop.gallery.people))
    final = daemon.run()
    log.info("%s after %d frames and %d face passes", final.status, final.frames, final.face_passes)
    return 0


def build_daemon(config: Config, source, *, fps: float | None = None, dry_run: bool):
    """Load the networks and the gallery and wire them into a Daemon over `source`.

    dry_run records lock and notify decisions (in memory and in <state dir>/dry-run.jsonl) instead of acting.
    """
    from facewatch.actions import DryRunRecorder, find_locker, find_notifier
    from facewatch.capture import FrameSource
    from facewatch.daemon import Daemon, Loop
    from facewatch.engine import (
        engine_choice, facenet_choice, gallery_cache_path, gallery_model_id, lean_heap, load_face_pipeline,
        load_matcher, load_person_detector,
    )
    from facewatch.events import EventLog, events_path
    from facewatch.gallery import load_gallery
    from facewatch.liveness import LivenessMonitor
    from facewatch.paths import state_dir
    from facewatch.policy import LockPolicy, PolicyRunner
    from facewatch.tracking.tracks import Tracker
    from facewatch.tracking.trigger import CountTrigger

    cam = config.camera
    # The source opens first: a missing video file fails before seconds of model loading.
    frames = FrameSource(source, target_fps=fps or cam.fps, width=cam.width, height=cam.height,
                         reconnect_initial_s=cam.reconnect_initial_s, reconnect_max_s=cam.reconnect_max_s,
                         stall_timeout_s=cam.stall_timeout_s)
    engine, engine_why = engine_choice(config)
    if engine == "onnx":
        lean_heap()
    person = load_person_detector(config, engine)
    faces, weights = load_face_pipeline(config, engine)
    log.info("engine %s (%s); FaceNet %s (%s)", engine, engine_why, weights, facenet_choice(config)[1])
    def reload_gallery():
        """The gallery as it is on disk now (cached embeddings reused)."""
        return load_gallery(config.gallery_dir, faces.embeddings_only, gallery_cache_path(config, weights),
                            gallery_model_id(weights))

    tr = config.tracking
    events = EventLog(events_path() if config.log.events else None)
    if dry_run:
        locker = notifier = DryRunRecorder(state_dir() / "dry-run.jsonl")
    else:
        locker, notifier = find_locker(), find_notifier()
    loop = Loop(
        source=frames, person=person, faces=faces, gallery=reload_gallery(), reload_gallery=reload_gallery,
        matcher=load_matcher(config, weights),
        trigger=CountTrigger(config.trigger.cooldown_s, config.trigger.recheck_s, config.trigger.retry_s),
        tracker=Tracker(tr.match_iou, tr.reverify_iou, tr.max_missed_s),
        events=events, fps=fps or cam.fps, active_fps=max(cam.active_fps, fps or cam.fps),
        policy=PolicyRunner(LockPolicy(config.policy), locker, notifier, events),
        locked_wait_s=config.policy.grace_seconds,
        liveness=LivenessMonitor(config.liveness, faces.detector) if config.liveness.enabled else None,
    )
    return Daemon(loop)
