"""MTCNN face detection: face boxes, scores and five landmarks from facenet-pytorch's P-, R- and O-Nets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facewatch.detectors.base import Face, check_image
from facewatch.detectors.mtcnn_onnx import detect_faces
from facewatch.weights.ort import cpu_session

# The ONNX files `export_mtcnn` writes, in cascade order (P-, R-, O-Net).
_BUILD_HINT = "build the ONNX files with `facewatch models build` (facewatch.detectors.face.export_mtcnn)"


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    """The three stage thresholds as floats; ValueError unless there are exactly three."""
    if len(thresholds) != 3:
        raise ValueError(f"thresholds must hold 3 values (P-, R-, O-Net), got {list(thresholds)}")
    return [float(t) for t in thresholds]


def _faces(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, min_probability: float) -> list[Face]:
    """Faces whose score reaches min_probability, highest score first (the one output of both engines)."""
    faces = [
        Face(
            box=np.asarray(box, np.float32),
            score=float(score),
            landmarks=np.asarray(marks, np.float32).reshape(5, 2),
        )
        for box, score, marks in zip(boxes, scores, landmarks)
        if score >= min_probability
    ]
    return sorted(faces, key=lambda face: face.score, reverse=True)


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

        self.min_face_size = int(min_face_size)
        self.min_probability = float(min_probability)
        # select_largest=False: facenet-pytorch orders by probability instead of area; detect() sorts again anyway.
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=self.min_face_size,
            thresholds=_check_thresholds(thresholds),
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
        return _faces(boxes, probs, points, self.min_probability)


def _mtcnn_session(path: Path, stage: str, outputs: int, side: int | None, threads: int):
    """Open one exported MTCNN network and return `run(nchw) -> outputs`; ValueError for a file of another network.

    cpu_session sets it up for a background process; its "no memory arena" matters most here: P-Net's input
    changes size at every pyramid level, and an arena would keep the largest level's buffers for good.
    """
    session = cpu_session(path, f"MTCNN {stage} model", _BUILD_HINT, threads)
    image = session.get_inputs()[0]
    fixed = [dim for dim in image.shape[2:] if isinstance(dim, int)]
    if len(image.shape) != 4 or len(session.get_outputs()) != outputs or fixed != ([side, side] if side else []):
        raise ValueError(
            f"{path} is not an MTCNN {stage} export (input {image.shape}, {len(session.get_outputs())} outputs); "
            f"{_BUILD_HINT}"
        )
    return lambda batch: session.run(None, {image.name: batch})


class OnnxMtcnnFaceDetector:
    """ONNX Runtime engine of the face detector: the P-, R- and O-Nets exported by export_mtcnn, no torch import."""

    def __init__(
        self,
        pnet: Path,
        rnet: Path,
        onet: Path,
        min_face_size: int = 40,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        min_probability: float = 0.9,
        threads: int = 1,
    ) -> None:
        """Open the three exported networks (threads: ONNX Runtime threads each); other settings as the torch engine."""
        self.min_face_size = int(min_face_size)
        self.min_probability = float(min_probability)
        self.thresholds = _check_thresholds(thresholds)
        self._pnet = _mtcnn_session(pnet, "P-Net", 2, None, threads)
        self._rnet = _mtcnn_session(rnet, "R-Net", 2, 24, threads)
        self._onet = _mtcnn_session(onet, "O-Net", 3, 48, threads)

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """Return the faces of an HxWx3 uint8 RGB image, highest score first; [] when there is none."""
        check_image(image_rgb, "image_rgb")
        if min(image_rgb.shape[:2]) < self.min_face_size:
            return []  # no face of the minimum size fits (and the image pyramid would be empty)
        boxes, scores, landmarks = detect_faces(
            image_rgb, self._pnet, self._rnet, self._onet, self.min_face_size, self.thresholds
        )
        return _faces(boxes, scores, landmarks, self.min_probability)
