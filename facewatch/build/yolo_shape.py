"""A fixed-size ultralytics YOLO detection export given a landscape input (320x192, 320x256), for the camera's shape.

A square export letterboxes a 640x480 frame into 320x320: a fifth of the input is grey padding, and two fifths for
a 16:9 frame, computed on every frame. ultralytics itself runs a .pt on the smallest stride-aligned rectangle
(rect inference); an export cannot, because it bakes its input size into a few constants. Rules of the rewrite:
  1. The new size is a multiple of the coarsest stride (32) in both directions, and not larger than the export's.
  2. The anchor centres (1, 2, N) and strides (1, N) of the detection head are rebuilt for the new grids, after
     checking that the old ones are exactly the export's grids (strides 8, 16, 32; centres at +0.5): a graph
     with other constants is refused (ShapeError), not guessed at.
  3. The shape given to each Reshape is rebuilt: a count of N anchors becomes the new count, and the attention
     block's coarsest grid (h*w, or h and w) becomes the new grid. Every other node and weight is kept as it is.
  4. The rewritten graph must pass onnx's checker and run in ONNX Runtime to an output of (1, 4 + classes, N'),
     else ShapeError: no half-converted graph is written.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from facewatch.detectors.person import graph_input_size, image_input, onnx_input_size
from facewatch.paths import write_private

STRIDES = (8, 16, 32)  # the three detection grids of ultralytics' YOLOv5u/v8/11 heads
LANDSCAPE = ((4, 3), (16, 9))  # the common webcam shapes (640x480, 1280x720, 1920x1080), width:height


class ShapeError(ValueError):
    """The model is not a fixed-size YOLO detection export whose input size this rewrite knows how to change."""


def landscape_sizes(path: Path) -> list[tuple[int, int]]:
    """The (height, width) of the 4:3 and 16:9 twins of a square export (rule 1); [] for any other input."""
    size = onnx_input_size(path)
    if size is None or size[0] != size[1]:
        return []
    side, step = size[0], STRIDES[-1]
    heights = {math.ceil(side * tall / wide / step) * step for wide, tall in LANDSCAPE}
    return [(height, side) for height in sorted(heights) if height < side]


def _grids(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Anchor centres (1, 2, N) and strides (1, N) of ultralytics' head for an input of height x width."""
    centres, strides = [], []
    for s in STRIDES:
        x, y = np.meshgrid(np.arange(width // s) + 0.5, np.arange(height // s) + 0.5)
        centres.append(np.stack([x.ravel(), y.ravel()]))
        strides.append(np.full(x.size, s))
    return np.concatenate(centres, 1)[None].astype(np.float32), np.concatenate(strides)[None].astype(np.float32)


def reshape_yolo(model, height: int, width: int):
    """Rules 1-3 on an onnx ModelProto (changed in place and returned); ShapeError when a rule cannot apply."""
    from onnx import numpy_helper

    graph = model.graph
    size = graph_input_size(graph)
    if size is None:
        raise ShapeError("the model's input is not a fixed-size image")
    old_h, old_w = size
    if height % STRIDES[-1] or width % STRIDES[-1] or height > old_h or width > old_w:
        raise ShapeError(f"{height}x{width} is not a multiple of {STRIDES[-1]} within the export's {old_h}x{old_w}")
    old_centres, old_strides = _grids(old_h, old_w)
    new_centres, new_strides = _grids(height, width)
    n_old, n_new = old_strides.shape[1], new_strides.shape[1]
    coarse_old = (old_h // STRIDES[-1], old_w // STRIDES[-1])
    coarse_new = (height // STRIDES[-1], width // STRIDES[-1])
    reshape_shapes = {node.input[1] for node in graph.node if node.op_type == "Reshape"}
    rebuilt = {"centres": 0, "strides": 0}
    for index, init in enumerate(graph.initializer):
        value, new = numpy_helper.to_array(init), None
        if value.dtype == np.float32 and value.shape == old_centres.shape:
            if not np.array_equal(value, old_centres):
                raise ShapeError(f"{init.name} is not ultralytics' anchor grid for {old_h}x{old_w}")
            new, rebuilt["centres"] = new_centres, rebuilt["centres"] + 1
        elif value.dtype == np.float32 and value.shape == old_strides.shape:
            if not np.array_equal(value, old_strides):
                raise ShapeError(f"{init.name} is not ultralytics' stride row for {old_h}x{old_w}")
            new, rebuilt["strides"] = new_strides, rebuilt["strides"] + 1
        elif init.name in reshape_shapes and value.dtype == np.int64 and value.ndim == 1:
            new = _new_reshape(value, n_old, n_new, coarse_old, coarse_new)
        if new is not None:
            graph.initializer[index].CopyFrom(numpy_helper.from_array(new.astype(value.dtype), init.name))
    if rebuilt["centres"] < 1 or rebuilt["strides"] != 1:
        raise ShapeError(f"no ultralytics detection head for {old_h}x{old_w} found (anchor constants: {rebuilt})")
    dims = image_input(graph).type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = height, width
    for output in graph.output:
        for dim in output.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value == n_old:
                dim.dim_value = n_new
    del graph.value_info[:]  # the old intermediate shapes no longer hold; onnx and ONNX Runtime infer them again
    return model


def _new_reshape(value: np.ndarray, n_old: int, n_new: int, coarse_old: tuple[int, int],
                 coarse_new: tuple[int, int]) -> np.ndarray | None:
    """Rule 3 for one Reshape target shape: the rebuilt shape, or None when it names no input-sized extent."""
    shape = value.tolist()
    if n_old in shape:
        return np.asarray([n_new if v == n_old else v for v in shape])
    if len(shape) == 4 and tuple(shape[2:]) == coarse_old:
        return np.asarray(shape[:2] + list(coarse_new))
    if len(shape) == 4 and shape[3] == coarse_old[0] * coarse_old[1]:
        return np.asarray(shape[:3] + [coarse_new[0] * coarse_new[1]])
    return None


def write_reshaped(src: Path, target: Path, height: int, width: int) -> Path:
    """Rules 1-4: `src` re-shaped to height x width, checked, run once, and written user-only to `target`."""
    import onnx
    import onnxruntime as ort

    model = reshape_yolo(onnx.load(str(src)), height, width)
    try:
        onnx.checker.check_model(model)
        data = model.SerializeToString()
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        out = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, height, width), np.float32)})[0]
    except Exception as exc:  # onnx and onnxruntime raise their own exception types
        raise ShapeError(f"{src.name} at {height}x{width} does not check or run ({exc})") from exc
    anchors = _grids(height, width)[1].shape[1]
    if out.ndim != 3 or out.shape[0] != 1 or out.shape[2] != anchors or out.shape[1] <= 4:
        raise ShapeError(f"{src.name} at {height}x{width} gives {out.shape}, not (1, 4 + classes, {anchors})")
    write_private(target, data)
    return target
