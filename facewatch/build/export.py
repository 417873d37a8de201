"""The torch part of the onnx engine's build: torch networks exported to ONNX (the torch extra only).

`facewatch models build` needs none of it for the default networks (build/onnx_models.py); it comes here for
facenet-pytorch's vggface2 weights and a .pt person model, and the torch tests re-export MTCNN with it to check
the graphs shipped in facewatch/data/mtcnn. Needs torch (and ultralytics for a .pt person model).
"""

from __future__ import annotations

import io
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from facewatch.identity.embedding import CROP_SIZE, ONNX_INPUT, ONNX_OUTPUT, TorchEmbedder
from facewatch.paths import write_private
from facewatch.weights.registry import MTCNN_ONNX_FILES


def torch_to_onnx(model: torch.nn.Module, shape: Sequence[int], input_name: str, output_names: list[str],
                  dynamic_axes: dict[str, dict[int, str]]) -> bytes:
    """One torch module traced on a zero input of `shape` into ONNX bytes (opset 17): the one export recipe."""
    buffer = io.BytesIO()
    # The TorchScript exporter (dynamo=False): the dynamo one needs the onnxscript package, which is not a
    # dependency. torch flags it as deprecated; the warning says nothing the user can act on.
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.zeros(*shape),), buffer, input_names=[input_name],
                          output_names=output_names, dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
    return buffer.getvalue()


def export_mtcnn(out_dir: Path) -> list[Path]:
    """Export the facenet-pytorch wheel's P-, R- and O-Net to ONNX in out_dir (atomically); return the 3 paths.

    P-Net takes any image height/width, R-/O-Net any batch of 24x24 / 48x48 crops. Needs torch (build time only).
    """
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    # (network, sample input shape, input name, output names, dynamic input axes, dynamic output axes)
    pyramid_level = {0: "batch", 2: "height", 3: "width"}
    heatmap = {0: "batch", 2: "rows", 3: "cols"}
    crops = {0: "batch"}
    nets = [
        (PNet, (1, 3, 36, 48), "image", ["box_regression", "face_probability"], pyramid_level, heatmap),
        (RNet, (2, 3, 24, 24), "crops", ["box_regression", "face_probability"], crops, crops),
        (ONet, (2, 3, 48, 48), "crops", ["box_regression", "landmarks", "face_probability"], crops, crops),
    ]
    paths = []
    for (net_class, shape, input_name, output_names, dynamic_in, dynamic_out), filename in zip(nets, MTCNN_ONNX_FILES):
        axes = {input_name: dynamic_in, **{name: dynamic_out for name in output_names}}
        path = Path(out_dir) / filename
        write_private(path, torch_to_onnx(net_class().eval(), shape, input_name, output_names, axes))
        paths.append(path)
    return paths


def export_facenet(state_dict_path: Path, out_path: Path) -> Path:
    """Export an InceptionResnetV1 state dict to ONNX (atomically) for OnnxEmbedder; return out_path.

    Input "crops": (batch, 3, 160, 160) float32 standardised crops, any batch; output "embeddings": (batch, 512)
    L2-normalised. Needs torch (build time only).
    """
    model = TorchEmbedder.from_state_dict(state_dict_path).model
    axes = {ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}}
    out_path = Path(out_path)
    write_private(out_path, torch_to_onnx(model, (2, 3, CROP_SIZE, CROP_SIZE), ONNX_INPUT, [ONNX_OUTPUT], axes))
    return out_path


def export_person(weights: Path, imgsz: int, target: Path) -> Path:
    """Export a YOLO .pt to ONNX at `imgsz` with ultralytics and move it to `target`."""
    from ultralytics import YOLO


    exported = Path(YOLO(str(weights)).export(format="onnx", imgsz=imgsz, dynamic=False, simplify=False))
    shutil.move(str(exported), target)
    return target
