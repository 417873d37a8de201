"""MTCNN face detection: face boxes, scores and five landmarks from facenet-pytorch's P-, R- and O-Nets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facewatch.detectors.base import Face


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


class MtcnnFaceDetector:
    """Torch engine of the face detector: facenet-pytorch's MTCNN with the weights its wheel ships (no download)."""

    def __init__(
        self,
        min_face_size: int = 40,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        min_probability: float = 0.9,
    ) -> None:
        """Load the three MTCNN stages on the CPU; faces whose O-Net score is below min_probability are dropped."""
        # Imported here so that importing this module (e.g. for check_image) does not pull in torch.
        from facenet_pytorch import MTCNN

        if len(thresholds) != 3:
            raise ValueError(f"thresholds must hold 3 values (P-, R-, O-Net), got {list(thresholds)}")
        self.min_face_size = int(min_face_size)
        self.min_probability = float(min_probability)
        # select_largest=False: facenet-pytorch orders by probability instead of area; detect() sorts again anyway.
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=self.min_face_size,
            thresholds=[float(t) for t in thresholds],
            select_largest=False,
            device="cpu",
        ).eval()

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """Return the faces of an HxWx3 uint8 RGB image, highest score first; [] when there is none."""
        check_image(image_rgb, "image_rgb")
        if min(image_rgb.shape[:2]) < self.min_face_size:
            return []  # no face of the minimum size fits (and MTCNN's image pyramid would be empty)
        boxes, probs, points = self._mtcnn.detect(image_rgb, landmarks=True)
        if boxes is None:
            return []
        faces = [
            Face(
                box=np.asarray(box, np.float32),
                score=float(prob),
                landmarks=np.asarray(marks, np.float32).reshape(5, 2),
            )
            for box, prob, marks in zip(boxes, probs, points)
            if prob >= self.min_probability
        ]
        return sorted(faces, key=lambda face: face.score, reverse=True)
