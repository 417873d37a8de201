"""What every detector returns, whatever engine runs it: boxes in frame pixels, scores, face landmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One detected object: box (x1, y1, x2, y2) in pixels of the input frame, and its confidence."""

    box: np.ndarray
    score: float


@dataclass(frozen=True)
class Face(Detection):
    """A detected face: box, score, and five landmarks (left eye, right eye, nose, mouth left, mouth right)."""

    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((5, 2), np.float32))


class PersonDetector(Protocol):
    """Finds people in a BGR frame (OpenCV's channel order, as FrameSource delivers it)."""

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Return the person boxes of one frame, highest score first."""
        ...


class FaceDetector(Protocol):
    """Finds faces with landmarks in an RGB image (the face pipeline converts the frame once)."""

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """Return the faces of one image, highest score first."""
        ...
