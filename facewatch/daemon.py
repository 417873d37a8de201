"""The watch loop: person count on every processed frame, the face pass only on a trigger, tracks carry names.

State is what the tray and CLI read; the loop owns it and every decision goes to the event log.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

import numpy as np

from facewatch.capture import Source
from facewatch.detectors.base import PersonDetector, to_rgb
from facewatch.events import EventLog
from facewatch.identity.gallery import Gallery
from facewatch.identity.liveness import LivenessMonitor
from facewatch.identity.matching import Matcher
from facewatch.identity.pipeline import FacePipeline, Identified
from facewatch.policy import PolicyRunner
from facewatch.tracking.tracks import Track, Tracker
from facewatch.tracking.trigger import CountTrigger

READ_TIMEOUT_S = 1.0
LOCK_PROBE_S = 2.0  # how often a locked daemon asks the OS whether the session was unlocked


Status = Literal["starting", "watching", "paused", "locked", "camera lost", "ended", "stopped"]


@dataclass(frozen=True)
class State:
    """A snapshot of the daemon for the tray and CLI: status, people in view, who they are, the last event."""

    status: Status = "starting"
    people: int = 0
    identities: tuple[str, ...] = ()
    face_passes: int = 0
    frames: int = 0
    last_event: dict[str, Any] | None = None
    paused_until: float | None = None
    log_failed: bool = False  # an event could not be written (disk full, no permission): see the warning


@dataclass
class Loop:
    """Everything one watch loop needs; built by engine/cli, replaced by fakes in tests."""

    source: Source
    person: PersonDetector
    faces: FacePipeline
    gallery: Gallery
    matcher: Matcher
    trigger: CountTrigger
    tracker: Tracker
    events: EventLog
    fps: float
    active_fps: float
    policy: PolicyRunner | None = None  # lock/notify decisions; None = watch only
    reload_gallery: Callable[[], Gallery] | None = None  # re-reads the gallery after an enrollment
    locked_wait_s: float = 10.0  # camera kept released this long after a lock when the OS cannot say "unlocked"
    liveness: LivenessMonitor | None = None  # owners named by a face pass must move like a live face; None = off
    on_face_pass: list[Callable[[float, list[Identified]], None]] = field(default_factory=list)
    on_frame: list[Callable[[np.ndarray, list[Track], State], None]] = field(default_factory=list)


class Daemon:
    """Runs a Loop until the source ends or stop() is called; pause/resume release and reopen the camera."""

    def __init__(self, loop: Loop, clock: Callable[[], float] = time.monotonic) -> None:
        self.loop = loop
        self.clock = clock
        self._state = State()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._locked_at = 0.0
        self._next_probe = 0.0

    @property
    def state(self) -> State:
        """The current snapshot (immutable; safe to read from the tray thread)."""
        with self._lock:
            return self._state

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._state = replace(self._state, **changes)

    def reload_gallery(self) -> None:
        """Re-read the gallery from disk (after an enrollment) and use it from the next face pass on."""
        if self.loop.reload_gallery is not None:
            self.loop.gallery = self.loop.reload_gallery()

    def stop(self) -> None:
        """Ask the loop to finish after the current frame (signal handlers and the tray call this)."""
        self._stop.set()

    def pause(self, seconds: float | None) -> None:
        """Stop watching for `seconds` (None = until resume) and free the camera for other apps."""
        until = None if seconds is None else self.clock() + seconds
        self._set(status="paused", paused_until=until if until is not None else float("inf"))
        self.loop.events.write("paused", seconds=seconds)

    def resume(self) -> None:
        """Watch again after a pause."""
        self._set(status="watching", paused_until=None)
        self.loop.events.write("resumed")

    def _paused(self) -> bool:
        """True while a pause is in force; an expired timed pause resumes by itself."""
        until = self.state.paused_until
        if until is None:
            return False
        if self.clock() >= until:
            self.resume()
            return False
        return True

    def _held(self) -> bool:
        """True while the screen is locked by us and not yet unlocked: the camera stays free meanwhile."""
        if self.state.status != "locked":
            return False
        now = self.clock()
        if now < self._next_probe:
            return True
        self._next_probe = now + LOCK_PROBE_S
        locked = self.loop.policy.is_locked()
        if locked or (locked is None and now - self._locked_at < self.loop.locked_wait_s):
            return True
        self._set(status="watching", last_event=self.loop.policy.unlocked(now))
        return False

    def _apply_policy(self, t: float, identities: list[str], camera_ok: bool, paused: bool,
                      unknown_since: float | None = None) -> None:
        """Let the policy decide on this moment; after a real lock, release the camera until the unlock."""
        policy = self.loop.policy
        if policy is None:
            return
        for done in policy.update(t, identities, camera_ok, paused, unknown_since):
            self._set(last_event=done.event)
            if done.locked:
                self._locked_at = self._next_probe = self.clock()
                self._set(status="locked")

    def run(self) -> State:
        """The loop: one screen, every step in its own module. Returns the final state."""
        lp = self.loop
        try:
            self._watch()
        finally:
            lp.source.close()
            lp.events.close()
        return self.state

    def _watch(self) -> None:
        """Pace, read, step until the source ends or stop() is called."""
        lp = self.loop
        while not self._stop.is_set():
            if self._paused() or self._held():
                self._apply_policy(self.clock(), [], True, True)
                lp.source.release()
                self._stop.wait(0.5)
                continue
            if lp.source.state == "released":
                lp.source.reopen()
            checking = lp.liveness is not None and lp.liveness.pending
            lp.source.target_fps = lp.active_fps if lp.trigger.pending or checking else lp.fps
            packet = lp.source.read(READ_TIMEOUT_S)
            if packet is None:
                self._set(status="ended")
                lp.events.write("ended", frames=self.state.frames, face_passes=self.state.face_passes)
                break
            if packet.frame is None:
                self._camera_state(lp.source.state)
                if lp.source.state == "camera lost":  # an empty read with no frame due is not "nobody here"
                    self._apply_policy(packet.t, [], False, False)
                continue
            self.step(packet.frame, packet.index, packet.t)
        else:
            self._set(status="stopped")

    def _camera_state(self, status: str) -> None:
        """Record a camera state change (lost/back) once, not on every empty read."""
        status = "camera lost" if status == "camera lost" else "watching"
        if self.state.status != status:
            self._set(status=status, last_event=self.loop.events.write("camera", state=status))

    def step(self, frame: np.ndarray, index: int, t: float) -> None:
        """Process one frame: count people, update tracks, and run the face pass if the trigger says so."""
        lp = self.loop
        if self.state.status == "camera lost":
            self._camera_state("running")  # the first frame after a loss: the camera is back, logged once
        start = time.perf_counter()
        persons = lp.person.detect(frame)
        person_ms = (time.perf_counter() - start) * 1000
        tracks = lp.tracker.update(persons, t)
        if lp.tracker.needs_reverify():
            lp.trigger.request("reverify")
        before = lp.trigger.confirmed_count
        reason = lp.trigger.update(len(persons), t)
        event = None
        if reason:
            event = self._face_pass(frame, index, t, reason, person_ms, tracks)
        elif lp.trigger.confirmed_count != before:
            event = lp.events.write("count", frame=index, t=round(t, 3), count=len(persons),
                                    identities=lp.tracker.identities(), person_ms=round(person_ms, 1))
        if lp.trigger.pending or not reason:
            lp.faces.warm(lp.trigger.pending)  # loaded during the cooldown, not after it; dropped when idle
        if lp.liveness is not None and lp.liveness.pending:
            event = self._liveness(frame, index, t) or event
        st = self.state
        self._set(status="watching" if st.status in ("starting", "camera lost") else st.status,
                  people=len(persons), identities=tuple(lp.tracker.identities()), frames=st.frames + 1,
                  last_event=event or st.last_event, log_failed=lp.events.failed)
        self._apply_policy(t, list(self.state.identities), True, False, lp.tracker.unknown_since())
        for callback in lp.on_frame:
            callback(frame, tracks, self.state)

    def _face_pass(self, frame: np.ndarray, index: int, t: float, reason: str, person_ms: float,
                   tracks: list[Track]) -> dict:
        """MTCNN + FaceNet + matcher on this frame; names go onto the tracks; returns the logged event."""
        lp = self.loop
        start = time.perf_counter()
        found = lp.faces.identify(to_rgb(frame), lp.gallery, lp.matcher)
        lp.tracker.apply_faces([f.face for f in found], [(f.match.name, f.match.score) for f in found], t)
        if lp.liveness is not None:
            lp.liveness.start(tracks, found, t)  # the owners just named stay provisional until judged live
        face_ms = (time.perf_counter() - start) * 1000
        self._set(face_passes=self.state.face_passes + 1)
        for callback in lp.on_face_pass:
            callback(t, found)
        return lp.events.write(
            "face_pass", frame=index, t=round(t, 3), reason=reason, count=lp.trigger.confirmed_count,
            faces=[{"name": f.match.name or "unknown", "score": round(f.match.score, 3),
                    "box": [round(float(v)) for v in f.face.box]} for f in found],
            identities=lp.tracker.identities(), person_ms=round(person_ms, 1), face_ms=round(face_ms, 1),
        )

    def _liveness(self, frame: np.ndarray, index: int, t: float) -> dict | None:
        """Detector-only liveness samples for provisional owners; log each verdict (a spoof is now "unknown")."""
        lp = self.loop
        event = None
        for outcome in lp.liveness.step(frame, t):
            v = outcome.verdict
            event = lp.events.write(
                "liveness", frame=index, t=round(t, 3), reason="liveness", track=outcome.track.id,
                name=outcome.name, verdict=v.decision, motion=None if v.motion is None else round(v.motion, 4),
                samples=v.samples, identities=lp.tracker.identities(),
            )
        return event
