"""FrameSource stand-ins for benchmarks: a clip replayed over and over, and one still frame, paced in real time."""

from __future__ import annotations

import time

import cv2

from facewatch.capture import FramePacket, FrameSource


class LoopedReplay:
    """A FrameSource over a video file that starts the file again at its end, on one continuous clock (frame
    times and indices keep growing), paced to wall time unless `fast`, and ending after `seconds` of clip time."""

    def __init__(self, clip: str, target_fps: float, seconds: float, fast: bool) -> None:
        self._open = lambda: FrameSource(clip, target_fps=self.target_fps)
        self._target_fps = target_fps
        cap = cv2.VideoCapture(clip)
        self._frames, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        self._length = self._frames / fps
        self._source = self._open()
        self.seconds, self.fast = seconds, fast
        self.loops = 0
        self.t = 0.0  # clip-clock time of the latest frame delivered
        self.started = time.monotonic()  # wall time at clip time 0

    @property
    def target_fps(self) -> float:
        """Frames per second delivered (the daemon raises it while a face pass is pending)."""
        return self._target_fps

    @target_fps.setter
    def target_fps(self, fps: float) -> None:
        self._target_fps = fps
        self._source.target_fps = fps

    @property
    def state(self) -> str:
        """The replay's state ("running", "released" or "ended")."""
        return self._source.state

    def read(self, timeout: float):
        """The next due frame on the continuous clock; None once `seconds` of clip time have been replayed."""
        packet = self._source.read(timeout)
        if packet is None:  # the file ended: start it again where the clock stands
            self._source.close()
            self._source = self._open()
            self.loops += 1
            packet = self._source.read(timeout)
            if packet is None:
                return None
        if packet.frame is None:
            return packet
        t = packet.t + self.loops * self._length
        if t >= self.seconds:
            self._source.close()
            return None
        if not self.fast:
            time.sleep(max(0.0, self.started + t - time.monotonic()))
        self.t = t
        return FramePacket(packet.frame, packet.index + self.loops * self._frames, t)

    def release(self) -> None:
        """Pause the replay (the daemon does this while paused or locked)."""
        self._source.release()

    def reopen(self) -> None:
        """Resume after release()."""
        self._source.reopen()

    def close(self) -> None:
        """Stop for good."""
        self._source.close()


class StillSource:
    """One real frame delivered at `fps` for `seconds`, paced in real time: a person sitting still at the desk."""

    state = "running"

    def __init__(self, frame, fps: float, seconds: float) -> None:
        self.frame, self.target_fps, self.seconds = frame, fps, seconds
        self._index = 0
        self._start = time.monotonic()

    def read(self, timeout: float = 1.0) -> FramePacket | None:
        """The frame again at the next tick of `fps`, or None after `seconds`."""
        t = self._index / self.target_fps
        if t >= self.seconds:
            return None
        time.sleep(max(0.0, self._start + t - time.monotonic()))
        self._index += 1
        return FramePacket(self.frame.copy(), self._index, t)

    def release(self) -> None:
        """Nothing to free."""

    def reopen(self) -> None:
        """Nothing to reopen."""

    def close(self) -> None:
        """Nothing to close."""
