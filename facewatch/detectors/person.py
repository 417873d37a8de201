"""YOLO person detection: person boxes in every processed frame.

Two engines: YoloPersonDetector runs a model through ultralytics (the reference; it imports torch), and
OnnxPersonDetector runs an ultralytics-exported .onnx directly on ONNX Runtime with ultralytics' letterbox,
decoding and NMS rewritten in numpy, so the daemon can work without torch. Importing this module imports neither.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facewatch.detectors.base import Detection, check_image
from facewatch.detectors.mtcnn_onnx import nms
from facewatch.weights.ort import cpu_session

log = logging.getLogger(__name__)

PERSON_CLASS = 0  # COCO class index of "person"
ASSETS_URL = "https://github.com/ultralytics/assets/releases"
PAD_VALUE = 114  # grey of ultralytics' letterbox borders
MAX_DETECTIONS = 300  # ultralytics' max_det


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


def image_input(graph: Any) -> Any:
    """The graph's image input (its first input that is not a weight: old exports list weights as inputs too)."""
    weights = {init.name for init in graph.initializer}
    return next(inp for inp in graph.input if inp.name not in weights)


def onnx_input_size(path: Path) -> tuple[int, int] | None:
    """Return (height, width) of an ONNX model's fixed image input, or None when they are dynamic."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # protobuf raises its own DecodeError types for damaged files
        raise ValueError(f"person model {path} is not a readable ONNX file ({exc}); export or download it again") from exc
    return graph_input_size(graph)


def graph_input_size(graph: Any) -> tuple[int, int] | None:
    """(height, width) of a loaded graph's fixed image input, or None when they are dynamic."""
    dims = image_input(graph).type.tensor_type.shape.dim
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
        self._predict_args: dict[str, Any] = {
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


_ONNX_HINT = (
    "use an ultralytics detection export (`yolo export model=yolo11n.pt format=onnx imgsz=320`), "
    "e.g. yolo11n_int8_320.onnx from facewatch's shared/models"
)


def person_session(graph: Path, threads: int = 1, hint: str = _ONNX_HINT) -> Any:
    """The person model's ONNX Runtime session, as the daemon and the build's timing open it.

    It runs on every frame at one input size, so its buffers are kept between runs (the memory arena): freed
    and mapped again, they cost 1,376 fresh pages a run at 192x320, 18.4 -> 15.2 ms measured here, for 4 MB held.
    """
    return cpu_session(graph, "person model", hint, threads, memory_arena=True)


def letterbox(frame: np.ndarray, height: int, width: int) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """Fit a frame into height x width as ultralytics' LetterBox does: keep the aspect, pad centred with grey 114.

    Returns the padded image, the (x, y) scale from frame to resized pixels and the (left, top) padding.
    """
    frame_h, frame_w = frame.shape[:2]
    ratio = min(height / frame_h, width / frame_w)
    new_w, new_h = max(round(frame_w * ratio), 1), max(round(frame_h * ratio), 1)
    if (new_w, new_h) != (frame_w, frame_h):
        frame = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    # An odd padding puts the extra pixel at the bottom / right (the -0.1/+0.1 keep Python's round off the .5 tie).
    pad_w, pad_h = (width - new_w) / 2, (height - new_h) / 2
    top, bottom, left, right = round(pad_h - 0.1), round(pad_h + 0.1), round(pad_w - 0.1), round(pad_w + 0.1)
    padded = cv2.copyMakeBorder(frame, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    return padded, (new_w / frame_w, new_h / frame_h), (left, top)


def decode_persons(output: np.ndarray, confidence: float, nms_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes (x1, y1, x2, y2 in network-input pixels) and scores from one YOLO output (4 + classes, anchors).

    As ultralytics: each anchor takes its best class; persons scoring above `confidence` go through NMS.
    """
    class_scores = output[4:]
    best = class_scores.argmax(axis=0)
    scores = class_scores[PERSON_CLASS]
    keep = (best == PERSON_CLASS) & (scores > confidence)
    centre, half = output[:2, keep].T, output[2:4, keep].T / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    scores = scores[keep]
    kept = nms(boxes, scores, nms_iou)[:MAX_DETECTIONS]
    return boxes[kept], scores[kept]


def _check_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Raise ValueError when the export's ultralytics metadata says it is not a plain COCO-style detector."""
    if metadata.get("task", "detect") != "detect":
        raise ValueError(f"person model {path} is a '{metadata['task']}' model, not a detection one; {_ONNX_HINT}")
    if metadata.get("end2end") == "True":
        raise ValueError(f"person model {path} is an end-to-end (NMS-free) export, not supported; {_ONNX_HINT}")
    try:
        names = ast.literal_eval(metadata.get("names", "{}"))
    except (ValueError, SyntaxError):
        return  # not ultralytics' metadata; the output shape check still applies
    if isinstance(names, dict) and names and names.get(PERSON_CLASS) != "person":
        raise ValueError(
            f"person model {path}: class {PERSON_CLASS} is {names.get(PERSON_CLASS)!r}, not 'person'; "
            f"use a COCO-trained model"
        )


class OnnxPersonDetector:
    """ONNX Runtime engine of the person detector: an ultralytics YOLO detection .onnx, no torch or ultralytics.

    Same boxes as YoloPersonDetector on the same file (same letterbox, decoding and NMS). A model with a dynamic
    input size is run at imgsz x imgsz.
    """

    def __init__(
        self,
        model: Path,
        confidence: float = 0.5,
        nms_iou: float = 0.45,
        threads: int = 1,
        imgsz: int = 320,
        shaped: Mapping[tuple[int, int], Path] | None = None,
    ) -> None:
        """Open the model (threads = ONNX Runtime intra-op threads), check it is a YOLO detector, run it once.

        `imgsz` is used only by a model whose input size is dynamic; a fixed-size export runs at its own size.
        `shaped` maps (height, width) to twins of a fixed-size export at smaller landscape inputs (the build's
        yolo_shape): each frame runs on the smallest input that keeps the square's scale, so a 640x480 frame
        costs a 320x256 run instead of 320x320. A twin is opened at the first frame that needs it, in place
        of the graph before it: one session at a time.
        """
        path = Path(model).expanduser()
        self.confidence, self.nms_iou = float(confidence), float(nms_iou)
        self._open = lambda graph: person_session(graph, threads)
        self._session = self._open(path)
        _check_metadata(path, self._session.get_modelmeta().custom_metadata_map)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        image = [len(i.shape) == 4 and i.shape[1] == 3 and i.type == "tensor(float)" for i in inputs]
        # A YOLO head gives (batch, 4 + classes, anchors); an export with NMS built in gives (batch, detections, 6).
        head = [len(o.shape) == 3 and o.shape[-1] != 6 for o in outputs]
        if image != [True] or head != [True]:
            found = f"inputs {[(i.shape, i.type) for i in inputs]}, outputs {[o.shape for o in outputs]}"
            raise ValueError(f"person model {path} is not a YOLO detection export ({found}); {_ONNX_HINT}")
        height, width = inputs[0].shape[2:]
        fixed = isinstance(height, int) and isinstance(width, int)
        self.imgsz: tuple[int, int] = (height, width) if fixed else (int(imgsz), int(imgsz))
        self._input = inputs[0].name
        self._square = self.imgsz
        self._graphs = {self.imgsz: path, **(shaped or {})} if fixed else {self.imgsz: path}
        self._sizes: dict[tuple[int, int], tuple[int, int]] = {}  # frame (height, width) -> input it runs at
        from onnxruntime.capi.onnxruntime_pybind11_state import (
            Fail,
            InvalidArgument,
            RuntimeException,
        )

        try:
            self.detect(np.zeros((*self.imgsz, 3), np.uint8))
        except (Fail, InvalidArgument, RuntimeException) as exc:  # e.g. a dynamic-size export run at another size
            raise ValueError(
                f"person model {path} does not run at {self.imgsz[0]}x{self.imgsz[1]} ({str(exc).strip()}); "
                f"set person.imgsz to the size it was exported at"
            ) from exc

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Return the person boxes (frame pixels, float32 x1, y1, x2, y2) of one BGR frame, highest score first."""
        check_image(frame_bgr, "frame_bgr")
        size = self._input_for(frame_bgr.shape[:2])
        if size != self.imgsz:
            self._switch(size)
        padded, scale, pad = letterbox(frame_bgr, *self.imgsz)
        blob = np.ascontiguousarray(padded[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255
        output = self._session.run(None, {self._input: blob})[0][0]
        boxes, scores = decode_persons(output, self.confidence, self.nms_iou)
        boxes = (boxes - np.asarray(pad * 2, np.float32)) / np.asarray(scale * 2, np.float32)
        height, width = frame_bgr.shape[:2]
        boxes = np.clip(boxes, 0, np.asarray([width, height, width, height], np.float32)).astype(np.float32)
        return [Detection(box=box, score=float(score)) for box, score in zip(boxes, scores)]

    def _input_for(self, frame_size: tuple[int, int]) -> tuple[int, int]:
        """The smallest input whose letterbox scales a frame of this size as the square input does."""
        size = self._sizes.get(frame_size)
        if size is None:
            height, width = frame_size
            scale = min(self._square[0] / height, self._square[1] / width)
            fits = [s for s in self._graphs if min(s[0] / height, s[1] / width) >= scale]
            size = self._sizes[frame_size] = min(fits, key=lambda s: s[0] * s[1])
        return size

    def _switch(self, size: tuple[int, int]) -> None:
        """Run at `size` from now on: its graph replaces the open one; a twin that fails to open is dropped."""
        del self._session  # freed before the next one loads: never two graphs in memory
        try:
            self._session = self._open(self._graphs[size])
        except (FileNotFoundError, ValueError) as exc:
            log.warning("person model at %dx%d unusable (%s); running at %dx%d", *size, exc, *self._square)
            del self._graphs[size]
            self._sizes.clear()
            size = self._square
            self._session = self._open(self._graphs[size])
        log.info("person model runs at %dx%d (%s)", *size, self._graphs[size].name)
        self.imgsz = size
