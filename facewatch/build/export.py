"""Build step of the onnx engine: torch networks exported to ONNX, FaceNet quantized, the person model exported.

Needs torch (and ultralytics for a .pt person model): run by `facewatch models build`, never by the daemon.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from facewatch.detectors.face import MTCNN_ONNX_FILES
from facewatch.identity.embedding import (
    CROP_SIZE,
    ONNX_HINT,
    ONNX_INPUT,
    ONNX_OUTPUT,
    TorchEmbedder,
)
from facewatch.paths import write_private
from facewatch.weights.registry import (
    casia_weights,
    exported_person_name,
    person_model_path,
    record_hash,
    writable_dir,
)


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


def quantize_facenet(fp32_path: Path, out_path: Path) -> Path:
    """Write an int8 copy of an exported FaceNet (dynamic quantization, atomically); return out_path.

    Weights become uint8: 4x smaller file and resident memory. Not the default: its embeddings differ from fp32
    (cosine >= 0.997 on real crops), so its LFW accuracy decides. uint8 rather than int8 weights: ONNX
    Runtime's ConvInteger ran 5x slower with int8 weights here, and matched fp32 less closely (cosine 0.995).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise FileNotFoundError(f"FaceNet model {fp32_path} does not exist; {ONNX_HINT}")
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / out_path.name
        quantize_dynamic(fp32_path, quantized, weight_type=QuantType.QUInt8)
        write_private(out_path, quantized.read_bytes())
    return out_path


def build_onnx(dirs: list[Path], person_model: str, imgsz: int, vggface2: Path | None) -> list[Path]:
    """Export every network of the onnx engine into the first model dir (with sidecar hashes); return the files.

    MTCNN and FaceNet come from the torch weights; a .pt person model goes through ultralytics' exporter, an
    .onnx one is used as it is. Needs torch: this is the build step, never run by the daemon.
    """
    out = writable_dir(dirs)
    built = export_mtcnn(out)
    built.append(export_facenet(casia_weights(dirs), out / "facenet_casia-webface.onnx"))
    if vggface2 is not None:
        built.append(export_facenet(vggface2, out / "facenet_vggface2.onnx"))
    if Path(person_model).suffix.lower() == ".pt":
        built.append(_export_person(person_model_path(person_model, dirs), imgsz,
                                    out / exported_person_name(person_model, imgsz)))
    for path in built:
        record_hash(path)
    return built


def _export_person(weights: Path, imgsz: int, target: Path) -> Path:
    """Export a YOLO .pt to ONNX at `imgsz` with ultralytics and move it to `target`."""
    from ultralytics import YOLO

    import facewatch.detectors.person  # noqa: F401  (ultralytics' offline/no-analytics switches first)

    exported = Path(YOLO(str(weights)).export(format="onnx", imgsz=imgsz, dynamic=False, simplify=False))
    shutil.move(str(exported), target)
    return target
