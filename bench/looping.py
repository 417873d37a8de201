"""A FrameSource stand-in that replays a clip over and over for a fixed time, optionally paced in real time."""

from __future__ import annotations

import time

from facewatch.capture import FramePacket, FrameSource


class LoopingSource:
    """Replays `clip` at `fps` (on the clip's clock) until `seconds` have passed, restarting it at its end.

    With `realtime`, read() sleeps until each frame is due, so CPU % and RSS are those of a live camera at `fps`.
    Frame times keep growing across restarts, as a live camera's would.
    """

    def __init__(self, clip: str, fps: float, seconds: float, realtime: bool = True) -> None:
        self.clip, self.seconds, self.realtime = clip, seconds, realtime
        self.state = "running"
        self.target_fps = fps
        self._offset = 0.0  # clip time where the current pass started
        self._last_t = 0.0
        self._index = 0
        self._start = time.monotonic()
        self._source = FrameSource(clip, target_fps=fps)

    def read(self, timeout: float = 1.0) -> FramePacket | None:
        """The next frame on a continuous timeline, or None once `seconds` of clip time have been delivered."""
        self._source.target_fps = self.target_fps
        packet = self._source.read(timeout)
        if packet is None:  # end of the clip: start it again, after the last frame's time
            self._source.close()
            self._offset = self._last_t + 1.0 / self.target_fps
            self._source = FrameSource(self.clip, target_fps=self.target_fps)
            packet = self._source.read(timeout)
        t = self._offset + packet.t
        if t >= self.seconds:
            return None
        if self.realtime:
            time.sleep(max(0.0, self._start + t - time.monotonic()))
        self._last_t = t
        self._index += 1
        return FramePacket(packet.frame, self._index, t)

    def release(self) -> None:
        """Nothing to free: a file."""

    def reopen(self) -> None:
        """Nothing to reopen: a file."""

    def close(self) -> None:
        """Close the underlying replay."""
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
