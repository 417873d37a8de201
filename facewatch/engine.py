"""Builds the networks the config asks for: person detector, face pipeline and matcher, from verified weights."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facewatch.config import Config, file_to_edit, model_dirs
from facewatch.detectors.base import FaceDetector, PersonDetector
from facewatch.identity.embedding import IdleReleasingEmbedder
from facewatch.identity.matching import (
    CosineMatcher,
    Matcher,
    SiameseMatcher,
)
from facewatch.identity.pipeline import FacePipeline
from facewatch.weights.registry import (
    MTCNN_ONNX_FILES,
    MTCNN_TORCH_FILES,
    ModelError,
    casia_weights,
    exported_person_name,
    locate,
    person_model_path,
    require,
)
from facewatch.weights.ort import FACE_PASS_THREADS
from facewatch.weights.variants import chosen_file, shaped_files


@dataclass(frozen=True)
class FaceNetChoice:
    """Which FaceNet weights were loaded ("vggface2" or "casia-webface") and the embedder itself."""

    weights: str
    embedder: object


VGGFACE2_FILE = "20180402-114759-vggface2.pt"  # the name facenet-pytorch caches its download under


def vggface2_file() -> Path | None:
    """facenet-pytorch's vggface2 download in the torch cache if it is there (found without importing torch)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    path = Path(home).expanduser() / "checkpoints" / VGGFACE2_FILE
    return path if path.is_file() else None


def facenet_choice(config: Config) -> tuple[str, str]:
    """The FaceNet weight set to run and why: "auto" takes vggface2 only once downloaded (`facewatch models build`
    fetches it), so the daemon itself never goes online for it; otherwise casia-webface."""
    wanted = config.embedding.weights
    if wanted != "auto":
        return wanted, f"embedding.weights is {wanted}"
    if vggface2_file() is not None:
        return "vggface2", "auto: vggface2 is downloaded"
    return "casia-webface", "auto: vggface2 is not downloaded; `facewatch models build` fetches it"


def facenet_weights(config: Config) -> str:
    """The FaceNet weight set facenet_choice picks (said once, by whoever reports the choice)."""
    return facenet_choice(config)[0]


def needed_files(config: Config, engine: str) -> list[str]:
    """The model files `engine` loads for this config, by registry name: one list for choose_engine and loaders.

    torch's FaceNet and person model are not listed: they are converted or downloaded on first use."""
    if engine == "onnx":
        return [*MTCNN_ONNX_FILES, f"facenet_{facenet_weights(config)}.onnx", _onnx_person_name(config)]
    return list(MTCNN_TORCH_FILES)


def engine_choice(config: Config) -> tuple[str, str]:
    """"torch" or "onnx" per config `engine`, and why; "auto" is onnx when `facewatch models build` has made its
    files (the reason names the ones missing)."""
    if config.engine != "auto":
        return config.engine, f"engine is {config.engine} in the config"
    if importlib.util.find_spec("torch") is None:
        return "onnx", "auto: the torch extra is not installed"
    dirs = model_dirs(config)
    missing = [name for name in needed_files(config, "onnx") if not locate(name, dirs)]
    if not missing:
        return "onnx", "auto: the onnx exports are built"
    return "torch", f"auto: onnx exports missing ({', '.join(missing)}); `facewatch models build` makes them"


def choose_engine(config: Config) -> str:
    """The engine engine_choice picks."""
    return engine_choice(config)[0]


def onnx_file(name: str, dirs: list[Path], resolve=require) -> Path:
    """The graph the onnx engine loads for plain file `name`: the variant `facewatch models build` chose and
    optimised for this CPU (weights/variants), else the plain file itself (resolved and verified by `resolve`)."""
    return chosen_file(Path(name).stem, dirs) or resolve(name, dirs)


def _onnx_person_name(config: Config) -> str:
    """The person model file the onnx engine runs: the configured .onnx, or the export of the configured .pt."""
    model = config.person.model
    return model if model.lower().endswith(".onnx") else exported_person_name(model, config.person.imgsz)


def load_person_detector(config: Config, engine: str) -> PersonDetector:
    """The person detector of `person.model` on `engine`, its file resolved through the model dirs and verified."""
    p, dirs = config.person, model_dirs(config)
    if engine == "onnx":
        from facewatch.detectors.person import OnnxPersonDetector

        name = _onnx_person_name(config)
        if name != p.model and locate(name, dirs) is None:
            raise ModelError(f"person.model {p.model} has no ONNX export ({name}) for the onnx engine: "
                             f"`facewatch models build` makes it (a .pt needs the torch extra: "
                             f"pip install 'facewatch[torch]'), or set person.model to an .onnx file")
        path = onnx_file(name, dirs, person_model_path)
        return OnnxPersonDetector(path, confidence=p.confidence, nms_iou=p.nms_iou, imgsz=p.imgsz,
                                  shaped=shaped_files(Path(name).stem, dirs))
    from facewatch.detectors.person import YoloPersonDetector

    path = person_model_path(p.model, dirs, file_to_edit(config))
    return YoloPersonDetector(path, imgsz=p.imgsz, confidence=p.confidence, nms_iou=p.nms_iou)


def load_facenet(config: Config, engine: str, weights: str | None = None) -> FaceNetChoice:
    """FaceNet of `weights` (default: facenet_weights(config)) on `engine`."""
    weights = weights or facenet_weights(config)
    dirs = model_dirs(config)
    if engine == "onnx":
        from facewatch.identity.embedding import OnnxEmbedder

        return FaceNetChoice(weights, OnnxEmbedder(onnx_file(f"facenet_{weights}.onnx", dirs), FACE_PASS_THREADS))
    from facewatch.identity.embedding import TorchEmbedder

    if weights == "vggface2":
        return FaceNetChoice(weights, TorchEmbedder.vggface2())
    return FaceNetChoice(weights, TorchEmbedder.from_state_dict(casia_weights(dirs)))


def load_face_detector(config: Config, engine: str) -> FaceDetector:
    """MTCNN on `engine` with the config's `face` settings, from verified files (the daemon, enroll and eval)."""
    from facewatch.detectors.face import MtcnnFaceDetector, OnnxMtcnnFaceDetector

    f = config.face
    options: dict[str, Any] = dict(min_face_size=f.min_face_size, thresholds=tuple(f.thresholds),
                                   min_probability=f.min_probability)
    dirs, names = model_dirs(config), needed_files(config, engine)[:3]
    if engine == "onnx":  # the variants `facewatch models build` chose for this CPU, else the plain files
        pnet, rnet, onet = (onnx_file(name, dirs) for name in names)
        return OnnxMtcnnFaceDetector(pnet, rnet, onet, threads=FACE_PASS_THREADS, **options)
    for name in names:
        require(name, dirs)  # verified, though facenet-pytorch loads its own copies
    return MtcnnFaceDetector(**options)


def load_face_pipeline(config: Config, engine: str) -> tuple[FacePipeline, str]:
    """MTCNN + FaceNet on `engine`, from verified files; returns the pipeline and the FaceNet weight set."""
    weights = facenet_weights(config)
    embedder = IdleReleasingEmbedder(lambda: load_facenet(config, engine, weights).embedder,
                                     config.embedding.release_idle_s)
    return FacePipeline(load_face_detector(config, engine), embedder), weights


def load_matcher(config: Config, weights: str, method: str | None = None) -> Matcher:
    """The matcher of `method` (default `matching.method`) at `matching.threshold`; when that is null (or set for
    the other method) cosine decides at each person's calibrated point and the Siamese head at its measured one."""
    method = method or config.matching.method
    threshold = config.matching.threshold if method == config.matching.method else None
    if method == "siamese":
        return SiameseMatcher.shipped(weights, threshold)
    return CosineMatcher(threshold)


def gallery_model_id(weights: str) -> str:
    """What the gallery's cached embeddings depend on: the FaceNet weights, the crop margin and the light
    normalisation (a change of any must re-embed every photo)."""
    from facewatch.identity.pipeline import CROP_MARGIN, LIGHT_VERSION

    return f"{weights}-margin{CROP_MARGIN}-{LIGHT_VERSION}"


def gallery_cache_path(config: Config, weights: str) -> Path:
    """Where the gallery's embedding cache for this weight set lives (user data dir, 0600)."""
    from facewatch.paths import data_dir

    return data_dir() / f"gallery-{weights}.json"
