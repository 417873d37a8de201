"""What every detector returns, whatever engine runs it: boxes in frame pixels, scores, face landmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


def check_image(image: np.ndarray, what: str = "image") -> None:
    """Raise ValueError unless `image` is a non-empty HxWx3 uint8 array, so bad input fails before any network runs."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{what} must be a numpy array (HxWx3 uint8), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must have shape HxWx3 (3 colour channels), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (0-255 pixels), got dtype {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {image.shape}")


def frame_problem(frame: object) -> str | None:
    """Why `frame` is no usable image (drivers sometimes hand back None or garbage), or None when it is one."""
    try:
        check_image(frame, "frame")  # type: ignore[arg-type]
    except ValueError as exc:
        return str(exc)
    return None


def to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    """A camera frame (BGR, OpenCV's order) in the RGB order the face networks take: the one conversion."""
    return np.ascontiguousarray(frame_bgr[:, :, ::-1])


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
