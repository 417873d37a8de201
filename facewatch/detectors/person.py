"""YOLO person detection (torch engine): person boxes in every processed frame, through ultralytics."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from facewatch.detectors.base import Detection
from facewatch.detectors.face import check_image

# Privacy: by default ultralytics resolves DNS names at import to decide whether it is online, and when it is, sends
# usage events to Google Analytics after every predict, checks PyPI for updates and pip-installs missing packages.
# YOLO_OFFLINE=1 makes it skip the probe and count as offline (no events, no update check, no install) and
# YOLO_AUTOINSTALL=0 forbids runtime installs outright; unlike `settings.update(sync=False)` neither rewrites the
# user's ~/.config/Ultralytics/settings.json. ultralytics reads them once, at import, so they are set here, before.
# Model downloads (a .pt named without a folder) are not affected: they happen only when the user names such a model.
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "0"
os.environ.setdefault("YOLO_VERBOSE", "False")  # ultralytics' per-load info lines stay out of our log

log = logging.getLogger(__name__)

PERSON_CLASS = 0  # COCO class index of "person"
ASSETS_URL = "https://github.com/ultralytics/assets/releases"


class ModelNotFoundError(FileNotFoundError):
    """A model file that is neither on disk nor something ultralytics can download by name."""


def _missing_model_message(path: Path, reason: str) -> str:
    """Explain which model file is missing and the ways to get one."""
    return (
        f"person model {path} {reason}. Use an existing .onnx or .pt file, or the bare name of an ultralytics "
        f"model (yolov5nu.pt, yolov8n.pt, yolo11n.pt), which ultralytics downloads on first use from {ASSETS_URL}; "
        f"an .onnx is exported from a .pt with `yolo export model=yolov8n.pt format=onnx imgsz=320`"
    )


def _check_model_path(path: Path) -> None:
    """Raise ModelNotFoundError unless `path` exists or is a .pt ultralytics downloads; ValueError for other formats."""
    from ultralytics.utils.checks import check_yolov5u_filename
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    if path.suffix.lower() not in (".pt", ".onnx"):
        raise ValueError(f"person model {path}: unsupported format, expected a .pt or .onnx file")
    successor = Path(check_yolov5u_filename(str(path), verbose=False))
    if successor != path:  # ultralytics would silently load (or download) the successor instead of this file
        raise ValueError(
            f"person model {path} names an original YOLOv5/YOLOv3 checkpoint, which ultralytics does not load; "
            f"use its ultralytics successor {successor.name} (downloaded on first use from {ASSETS_URL})"
        )
    if path.is_file():
        return
    if path.suffix.lower() != ".pt" or path.name not in GITHUB_ASSETS_NAMES:
        raise ModelNotFoundError(_missing_model_message(path, "does not exist"))


def onnx_input_size(path: Path) -> tuple[int, int] | None:
    """Return (height, width) of an ONNX model's fixed image input, or None when they are dynamic."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # protobuf raises its own DecodeError types for damaged files
        raise ValueError(f"person model {path} is not a readable ONNX file ({exc}); export or download it again") from exc
    weights = {init.name for init in graph.initializer}
    image_input = next(inp for inp in graph.input if inp.name not in weights)
    dims = image_input.type.tensor_type.shape.dim
    if len(dims) != 4 or not all(dim.HasField("dim_value") for dim in dims[2:]):
        return None
    return dims[2].dim_value, dims[3].dim_value


class YoloPersonDetector:
    """Torch engine of the person detector: ultralytics YOLO (.pt, or .onnx run by ONNX Runtime), COCO person only."""

    def __init__(self, model: str | Path, imgsz: int = 320, confidence: float = 0.5, nms_iou: float = 0.45) -> None:
        """Load the model and run it once, so a broken file fails here and the first real frame is not slow."""
        path = Path(model).expanduser()
        _check_model_path(path)
        size: int | tuple[int, int] = int(imgsz)
        if path.suffix.lower() == ".onnx":
            fixed = onnx_input_size(path)
            if fixed is not None:
                if fixed != (size, size):
                    log.debug("%s has a fixed %dx%d input; using it instead of imgsz=%d", path.name, *fixed, size)
                size = fixed if fixed[0] != fixed[1] else fixed[0]
        self.imgsz = size
        self._predict_args = {
            "imgsz": size,
            "conf": float(confidence),
            "iou": float(nms_iou),
            "classes": [PERSON_CLASS],
            "verbose": False,
        }

        from ultralytics import YOLO
        from ultralytics.utils.events import events

        events.enabled = False  # the same promise when something imported ultralytics before this module
        try:
            self._yolo = YOLO(str(path), task="detect")
        except ConnectionError as exc:  # a downloadable .pt that could not be fetched
            reason = f"is not on this machine and its download failed ({exc})"
            raise ModelNotFoundError(_missing_model_message(path, reason)) from exc
        height, width = (size, size) if isinstance(size, int) else size
        self.detect(np.zeros((height, width, 3), np.uint8))

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Return the person boxes (frame pixels, float32 x1, y1, x2, y2) of one BGR frame, highest score first."""
        check_image(frame_bgr, "frame_bgr")
        boxes = self._yolo.predict(frame_bgr, **self._predict_args)[0].boxes
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
        scores = boxes.conf.cpu().numpy()
        order = np.argsort(-scores, kind="stable")
        return [Detection(box=xyxy[i], score=float(scores[i])) for i in order]
