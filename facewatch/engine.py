"""Builds the networks the config asks for: person detector, face pipeline and matcher, from verified weights."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from facewatch.config import Config, model_dirs
from facewatch.identify import FacePipeline
from facewatch.matching import COSINE_THRESHOLDS, CosineMatcher, Matcher
from facewatch.models import casia_weights, person_model_path, require

log = logging.getLogger("facewatch.engine")


@dataclass(frozen=True)
class FaceNetChoice:
    """Which FaceNet weights were loaded ("vggface2" or "casia-webface") and the embedder itself."""

    weights: str
    embedder: object


def load_person_detector(config: Config):
    """The YOLO person detector of `person.model`, resolved through the model dirs and verified."""
    from facewatch.detectors.person import YoloPersonDetector

    path = person_model_path(config.person.model, model_dirs(config))
    p = config.person
    return YoloPersonDetector(path, imgsz=p.imgsz, confidence=p.confidence, nms_iou=p.nms_iou)


VGGFACE2_FILE = "20180402-114759-vggface2.pt"  # the name facenet-pytorch caches its download under


def vggface2_cached() -> bool:
    """True when facenet-pytorch's vggface2 download is already in the torch cache (no network needed to load)."""
    from facenet_pytorch.models.inception_resnet_v1 import get_torch_home

    return (Path(get_torch_home()) / "checkpoints" / VGGFACE2_FILE).is_file()


def load_facenet(config: Config) -> FaceNetChoice:
    """FaceNet per `embedding.weights`. "auto" takes vggface2 only when already downloaded (`facewatch models
    build` fetches it), so the daemon itself never goes online; otherwise casia-webface, said in one line."""
    from facewatch.embedding import TorchEmbedder

    wanted = config.embedding.weights
    if wanted == "vggface2" or (wanted == "auto" and vggface2_cached()):
        return FaceNetChoice("vggface2", TorchEmbedder.vggface2())
    if wanted == "auto":
        log.info("FaceNet: using casia-webface (vggface2 is not downloaded; `facewatch models build` fetches it)")
    return FaceNetChoice("casia-webface", TorchEmbedder.from_state_dict(casia_weights(model_dirs(config))))


def load_face_pipeline(config: Config) -> tuple[FacePipeline, str]:
    """MTCNN (weights verified from the facenet-pytorch wheel) + FaceNet; returns the pipeline and the weight set."""
    from facewatch.detectors.face import MtcnnFaceDetector

    dirs = model_dirs(config)
    for net in ("pnet.pt", "rnet.pt", "onet.pt"):
        require(net, dirs)
    f = config.face
    detector = MtcnnFaceDetector(
        min_face_size=f.min_face_size, thresholds=tuple(f.thresholds), min_probability=f.min_probability
    )
    facenet = load_facenet(config)
    return FacePipeline(detector, facenet.embedder), facenet.weights


def load_matcher(config: Config, weights: str) -> Matcher:
    """The matcher of `matching.method` with the configured threshold, or the one measured for these weights."""
    threshold = config.matching.threshold
    return CosineMatcher(COSINE_THRESHOLDS[weights] if threshold is None else threshold)


def gallery_cache_path(config: Config, weights: str) -> Path:
    """Where the gallery's embedding cache for this weight set lives (user data dir, 0600)."""
    from facewatch.paths import data_dir

    return data_dir() / f"gallery-{weights}.json"
