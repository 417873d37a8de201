"""Stand-ins for the daemon's parts (person detector, face pipeline, frame source, embedder) with scripted output."""

from __future__ import annotations

import numpy as np

from facewatch.detectors.base import Detection


class ScriptedPersons:
    """A person detector that returns a scripted number of side-by-side boxes per call."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = iter(counts)

    def detect(self, frame):
        n = next(self.counts)
        return [Detection(np.array([100 * i, 0, 100 * i + 80, 200], np.float32), 0.9) for i in range(n)]


class CountingFaces:
    """A face pipeline stand-in that finds nothing and counts how often it ran."""

    def __init__(self) -> None:
        self.runs = 0

    def identify(self, image, gallery, matcher):
        self.runs += 1
        return []

    def warm(self, pass_coming: bool) -> None:
        """No network to load or release."""


class FrameList:
    """A FrameSource stand-in delivering numbered blank frames at a fixed rate, then the end of the replay."""

    state = "running"
    target_fps = None

    def __init__(self, n: int, fps: float) -> None:
        self.packets = iter(range(n))
        self.fps = fps

    def read(self, timeout):
        from facewatch.capture import FramePacket

        i = next(self.packets, None)
        return None if i is None else FramePacket(np.zeros((240, 320, 3), np.uint8), i, i / self.fps)

    def release(self): ...
    def reopen(self): ...
    def close(self): ...


class CountingEmbedder:
    """A stand-in for the face pass that returns one fixed embedding per image and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        vec = np.zeros((1, 512), np.float32)
        vec[0, int(image.mean()) % 512] = 1.0
        return vec
