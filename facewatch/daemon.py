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
from facewatch.policy import Done, PolicyRunner
from facewatch.tracking.tracks import Track, Tracker
from facewatch.tracking.trigger import CountTrigger

READ_TIMEOUT_S = 1.0
LOCK_PROBE_S = 2.0  # how often a locked daemon asks the OS whether the session was unlocked


Status = Literal["starting", "watching", "paused", "locked", "camera lost", "camera in use", "ended", "stopped"]
IN_USE = "camera in use"  # another app holds the camera: facewatch let go of it (facewatch/system/camera_yield.py)


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
    locked_wait_s: float = 10.0  # camera kept released this long after a lock while no locker can say "unlocked"
    camera_yield: Any = None  # facewatch.system.camera_yield.CameraYield: steps aside for other apps; None = never
    idle: Callable[[], float | None] = lambda: None  # input idle seconds for policy.camera_in_use (None = unknown)
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
        self._unknown_since: float | None = None  # since when no locker could say whether we are still locked
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
        """True while the screen is locked by us and not yet unlocked: the camera stays free meanwhile.

        The unlock is read from the locker; only while no locker can tell is it assumed after locked_wait_s."""
        if self.state.status != "locked":
            return False
        assert self.loop.policy is not None  # only the policy locks
        now = self.clock()
        if now < self._next_probe:
            return True
        self._next_probe = now + LOCK_PROBE_S
        locked = self.loop.policy.is_locked()
        if locked is None:
            self._unknown_since = now if self._unknown_since is None else self._unknown_since
            if now - self._unknown_since < self.loop.locked_wait_s:
                return True
            how = f"assumed: no locker has told the lock state for {now - self._unknown_since:.0f} s"
        elif locked:
            self._unknown_since = None
            return True
        else:
            how = "the locker says unlocked"
        self._set(status="watching", last_event=self.loop.policy.unlocked(now, how))
        return False

    def _yielded(self) -> bool:
        """True while another app holds the camera: the status says so once, and policy rule 10 decides."""
        watch = self.loop.camera_yield
        if watch is None:
            return False
        if not watch.busy:
            if self.state.status == IN_USE:
                self._set(status="watching", last_event=self.loop.events.write("camera", state="free again"))
            return False
        if self.state.status != IN_USE:
            event = self.loop.events.write("camera", state=IN_USE, holders=list(watch.holders),
                                           yield_ms=None if watch.yield_ms is None else round(watch.yield_ms, 1))
            self._set(status=IN_USE, last_event=event)
        if self.loop.policy is not None and self.state.status == IN_USE:
            self._record(self.loop.policy.camera_in_use(self.clock(), self.loop.idle()))
        return True

    def _apply_policy(self, t: float, identities: list[str], camera_ok: bool, paused: bool,
                      unknown_since: float | None = None) -> None:
        """Let the policy decide on this moment; after a real lock, release the camera until the unlock."""
        policy = self.loop.policy
        if policy is None:
            return
        self._record(policy.update(t, identities, camera_ok, paused, unknown_since))

    def _record(self, done: list[Done]) -> None:
        """Show what the policy did; after a lock, hold the camera released until the unlock."""
        for item in done:
            self._set(last_event=item.event)
            if item.locked:
                self._next_probe = self.clock()
                self._unknown_since = None if item.event.get("confirmed") else self.clock()
                self._set(status="locked")

    def run(self) -> State:
        """The loop: one screen, every step in its own module. Returns the final state."""
        lp = self.loop
        try:
            self._watch()
        finally:
            if lp.camera_yield is not None:
                lp.camera_yield.close()
            lp.source.close()
            lp.events.close()
        return self.state

    def _watch(self) -> None:
        """Pace, read, step until the source ends or stop() is called."""
        lp = self.loop
        while not self._stop.is_set():
            if self._paused() or self._held() or self._yielded():
                if self.state.status != IN_USE:
                    self._apply_policy(self.clock(), [], True, True)
                lp.source.release()
                self._stop.wait(0.5)
                continue
            if lp.source.state == "released":
                lp.source.reopen()
            lp.source.target_fps = self._pace()
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

    def _pace(self) -> float:
        """The active fps while a decision is near (a count change pending, liveness sampling, a name withheld, a
        stranger's clock running), so it lands on time; the idle fps otherwise."""
        lp = self.loop
        checking = lp.liveness is not None and lp.liveness.pending
        deciding = lp.policy is not None and lp.policy.deciding
        busy = lp.trigger.pending or checking or lp.tracker.withheld or deciding
        return lp.active_fps if busy else lp.fps

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
        tracks = lp.tracker.update(persons, t, frame)  # a name that no longer fits its person is suspended here
        event = self._log_suspensions(index, t)
        request = lp.tracker.face_pass_request()
        if request:
            lp.trigger.request(*request)
        before = lp.trigger.confirmed_count
        reason = lp.trigger.update(len(persons), t)
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
        named = lp.tracker.apply_faces([f.face for f in found], [f.match for f in found], t, frame)
        self._log_suspensions(index, t)  # an uncertain match withholds a name
        if lp.liveness is not None:  # the owners just named stay provisional until judged live
            lp.liveness.start([track for track in tracks if track.id in named], found, t)
        face_ms = (time.perf_counter() - start) * 1000
        self._set(face_passes=self.state.face_passes + 1)
        for callback in lp.on_face_pass:
            callback(t, found)
        return lp.events.write(
            "face_pass", frame=index, t=round(t, 3), reason=reason, count=lp.trigger.confirmed_count,
            faces=[{"name": f.match.name or "unknown", "score": round(f.match.score, 3), "uncertain": f.match.uncertain,
                    "box": [round(float(v)) for v in f.face.box]} for f in found],
            identities=lp.tracker.identities(), person_ms=round(person_ms, 1), face_ms=round(face_ms, 1),
        )

    def _log_suspensions(self, index: int, t: float) -> dict | None:
        """One event-log line per name the tracker just withheld (why: appearance_changed, scene_cut, uncertain)."""
        lp, event = self.loop, None
        for s in lp.tracker.suspensions:
            event = lp.events.write("suspended", frame=index, t=round(t, 3), track=s.track, name=s.name,
                                    reason=s.reason, identities=lp.tracker.identities())
        return event

    def _liveness(self, frame: np.ndarray, index: int, t: float) -> dict | None:
        """Detector-only liveness samples for provisional owners; the tracker applies each verdict, logged."""
        lp = self.loop
        assert lp.liveness is not None  # called only when liveness is on
        event = None
        for outcome in lp.liveness.step(frame, t):
            v = outcome.verdict
            lp.tracker.apply_liveness(outcome.track.id, outcome.name, v.decision)
            event = lp.events.write(
                "liveness", frame=index, t=round(t, 3), reason="liveness", track=outcome.track.id,
                name=outcome.name, verdict=v.decision, motion=None if v.motion is None else round(v.motion, 4),
                samples=v.samples, identities=lp.tracker.identities(),
            )
        return event
