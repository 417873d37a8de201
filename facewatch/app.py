"""The composition root: turns a Config and a source into a running Daemon; every command that watches calls it."""

from __future__ import annotations

import dataclasses
import logging

from facewatch.capture import Source
from facewatch.config import Config
from facewatch.daemon import Daemon
from facewatch.identity.calibration import OwnerCalibration
from facewatch.identity.gallery import Gallery
from facewatch.identity.matching import Matcher
from facewatch.identity.pipeline import FacePipeline

log = logging.getLogger("facewatch.run")


def build_daemon(config: Config, source: str | int | Source, *, fps: float | None = None, dry_run: bool) -> Daemon:
    """Load the networks and the gallery and wire them into a Daemon over `source`: a camera index, a video file
    or a stream URL, or a ready Source (a benchmark's stand-in for a camera) used as it is.

    dry_run records lock and notify decisions (in memory and in <state dir>/dry-run.jsonl) instead of acting.
    """
    from facewatch.actions.dryrun import DryRunRecorder
    from facewatch.actions.lock import Locker, find_locker
    from facewatch.actions.notify import Notifier, find_notifier
    from facewatch.capture import FrameSource
    from facewatch.daemon import Loop
    from facewatch.engine import (
        engine_choice,
        facenet_choice,
        load_face_pipeline,
        load_matcher,
        load_person_detector,
    )
    from facewatch.events import EventLog, events_path
    from facewatch.identity.liveness import LivenessMonitor
    from facewatch.paths import state_dir
    from facewatch.policy import LockPolicy, PolicyRunner
    from facewatch.system.camera_yield import watch_camera
    from facewatch.system.idle import find_idle_probe
    from facewatch.tracking.continuity import ContinuityCheck
    from facewatch.tracking.tracks import Tracker
    from facewatch.tracking.trigger import CountTrigger
    from facewatch.weights.heap import lean_heap

    cam = config.camera
    # The source opens first: a missing video file fails before seconds of model loading.
    frames = source if not isinstance(source, (str, int)) else FrameSource(
        source, target_fps=fps or cam.fps, width=cam.width, height=cam.height,
        reconnect_initial_s=cam.reconnect_initial_s, reconnect_max_s=cam.reconnect_max_s,
        stall_timeout_s=cam.stall_timeout_s)
    engine, engine_why = engine_choice(config)
    if engine == "onnx":
        lean_heap()
    person = load_person_detector(config, engine)
    faces, weights = load_face_pipeline(config, engine)
    log.info("engine %s (%s); FaceNet %s (%s)", engine, engine_why, weights, facenet_choice(config)[1])
    matcher = load_matcher(config, weights)

    def reload_gallery() -> Gallery:
        """The gallery as it is on disk now, calibrated per person; says so when nobody is enrolled."""
        gallery = calibrated_gallery(config, faces, weights, matcher)[0]
        if not gallery.people:
            log.warning("nobody is enrolled: every face is a stranger and locks the screen; "
                        "enroll first: facewatch enroll NAME --images PHOTO... (or --from-camera)")
        return gallery

    tr = config.tracking
    events = EventLog(events_path() if config.log.events else None,
                      max_bytes=int(config.log.events_max_mb * 1024 * 1024), keep=config.log.events_keep)
    locker: Locker
    notifier: Notifier
    if dry_run:
        locker = notifier = DryRunRecorder(state_dir() / "dry-run.jsonl")
    else:
        locker, notifier = find_locker(), find_notifier()
    log.info("loading gallery %s", config.gallery_dir)  # a first load of hundreds of photos takes a while
    loop = Loop(
        source=frames, person=person, faces=faces, gallery=reload_gallery(), reload_gallery=reload_gallery,
        matcher=matcher,
        trigger=CountTrigger(config.trigger.cooldown_s, config.trigger.recheck_s, config.trigger.retry_s),
        tracker=Tracker(tr.match_iou, tr.reverify_iou, tr.max_missed_s,
                        ContinuityCheck(tr.appearance_change, tr.scene_cut)),
        events=events, fps=fps or cam.fps, active_fps=max(cam.active_fps, fps or cam.fps),
        policy=PolicyRunner(LockPolicy(config.policy), locker, notifier, events),
        locked_wait_s=config.policy.grace_seconds,
        liveness=LivenessMonitor(config.liveness, faces.detector) if config.liveness.enabled else None,
        idle=find_idle_probe() if config.policy.camera_in_use == "lock_if_idle" else (lambda: None),
    )
    # Another app opening the camera gets it at once: released from the watcher's thread, not the loop's.
    if isinstance(frames, FrameSource) and frames.kind == "camera":
        camera = frames
        loop.camera_yield = watch_camera(camera.source, lambda busy: camera.release() if busy else None)
    return Daemon(loop)


def calibrated_gallery(config: Config, faces: FacePipeline, weights: str,
                       matcher: Matcher) -> tuple[Gallery, dict[str, OwnerCalibration]]:
    """The gallery on disk (checked cached embeddings reused) with each person's operating point: the one way
    the daemon and `facewatch list` read it, so both use one cache key and one calibration."""
    from facewatch.engine import gallery_cache_path, gallery_model_id
    from facewatch.identity.calibration import calibrate_gallery
    from facewatch.identity.gallery import load_gallery

    gallery = load_gallery(config.gallery_dir, faces.embeddings_only, gallery_cache_path(config, weights),
                           gallery_model_id(weights), dataclasses.asdict(config.face))
    return gallery, calibrate_gallery(gallery, faces.embed_crops, gallery_model_id(weights), matcher)
