"""Face embeddings of a whole image dataset (central face, crop, embed), cached on disk so a rerun costs seconds."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facewatch.detectors.base import Face, FaceDetector
from facewatch.identity.embedding import EMBEDDING_DIM, face_crops, l2_normalize
from facewatch.imageio import read_rgb
from facewatch.paths import write_private

EMBED_CHUNK = 64  # images read, cropped and embedded per step: bounds memory, paces progress reports
# The "dim" variant: a camera in a dim room. Linear light scaled by DIM_GAIN through gamma DIM_GAMMA (mean grey
# level ~120 becomes ~23), plus Gaussian sensor noise of DIM_NOISE grey levels, seeded per image.
DIM_GAIN, DIM_GAMMA, DIM_NOISE = 0.5, 2.2, 4.0
VARIANTS = ("colour", "gray", "dim")


def render(image_rgb: np.ndarray, variant: str, key: str = "") -> np.ndarray:
    """The image as another camera would see it: unchanged ("colour"), grey ("gray": an infrared or dim webcam
    gives near-grey frames), or "dim" (darkened with sensor noise, reproducible per `key`)."""
    if variant == "colour":
        return image_rgb
    if variant == "gray":
        grey = np.asarray(image_rgb, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.repeat(np.clip(np.round(grey), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if variant == "dim":
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))
        light = 255 * DIM_GAIN * (np.asarray(image_rgb, np.float32) / 255) ** DIM_GAMMA
        noisy = light + rng.normal(0, DIM_NOISE, image_rgb.shape[:2]).astype(np.float32)[..., None]
        return np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")


class ProtocolError(ValueError):
    """A pairs file or dataset folder that does not follow the protocol; the message names the file and line."""


def central_face(faces: Sequence[Face], image_shape: tuple[int, ...]) -> Face | None:
    """The face whose box centre is nearest the image centre (LFW centres the labelled person), or None."""
    if not faces:
        return None
    centre = np.array([image_shape[1], image_shape[0]], np.float64) / 2
    return min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


@dataclass(frozen=True)
class DatasetEmbeddings:
    """Per image of a dataset: the face box used, whether MTCNN found it, and embeddings of the crop and its flip."""

    keys: list[str]
    boxes: np.ndarray
    found: np.ndarray
    plain: np.ndarray
    flipped: np.ndarray

    def vectors(self, mirror: bool = False) -> np.ndarray:
        """(N, 512) unit embeddings: of the crop, or with `mirror` the normalised sum of the crop's and its flip's."""
        if mirror and len(self.flipped) != len(self.plain):
            raise ValueError("these embeddings were computed without the mirror images (flips=False)")
        return l2_normalize(self.plain + self.flipped) if mirror else l2_normalize(self.plain)

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Row indices of the given image keys."""
        index = {k: i for i, k in enumerate(self.keys)}
        return np.array([index[k] for k in keys], np.int64)

    @property
    def no_face(self) -> list[str]:
        """Images where MTCNN found no face: their box is the dataset's median face box instead."""
        return [k for k, f in zip(self.keys, self.found) if not f]


def _cache_file(cache_dir: Path, tag: str, key: str) -> Path:
    """A cache file name that changes whenever the settings it depends on change."""
    return Path(cache_dir) / f"{tag}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _cached(path: Path | None, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays loaded from `path` if it was written for the same `key`, else computed and written there (0600)."""
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) == key:
                    return {name: data[name] for name in data.files if name != "key"}
        except (OSError, ValueError, KeyError):
            pass  # unreadable or foreign cache: recompute
    arrays = compute()
    if path is not None:
        buffer = io.BytesIO()
        np.savez(buffer, key=np.array(key), **arrays)  # type: ignore[arg-type]  # numpy types **kwds against allow_pickle
        write_private(path, buffer.getvalue())
    return arrays


def _find_boxes(root: Path, keys: list[str], detector: FaceDetector, variant: str,
                progress) -> dict[str, np.ndarray]:
    """The central face box of every image; images without a face get the median face box of the others,
    scaled to their size (deep-funneled LFW and cropped face sets put the face in the same place)."""
    boxes = np.zeros((len(keys), 4), np.float64)
    sizes = np.zeros((len(keys), 2), np.float64)
    found = np.zeros(len(keys), bool)
    for i, key in enumerate(keys):
        image = render(read_rgb(root / key), variant, key)
        sizes[i] = image.shape[1], image.shape[0]
        face = central_face(detector.detect(image), image.shape)
        if face is not None:
            boxes[i], found[i] = face.box, True
        if progress:
            progress("detect", i + 1, len(keys))
    if found.any():
        relative = np.median(boxes[found] / np.tile(sizes[found], 2), axis=0)
    else:
        relative = np.array([0.0, 0.0, 1.0, 1.0])  # nothing found anywhere: use whole images
    boxes[~found] = relative * np.tile(sizes[~found], 2)
    return {"boxes": boxes, "found": found}


def _embed_boxes(root: Path, keys: list[str], boxes: np.ndarray, embedder, margin: int, variant: str,
                 progress, flips: bool = True) -> dict:
    """Embeddings of every image's box crop and, with `flips`, of its horizontal flip."""
    plain, flipped = [], []
    for start in range(0, len(keys), EMBED_CHUNK):
        crops = np.stack([
            face_crops(render(read_rgb(root / key), variant, key), boxes[i], margin=margin)[0]
            for i, key in enumerate(keys[start : start + EMBED_CHUNK], start)
        ])
        plain.append(embedder.embed(crops))
        if flips:
            flipped.append(embedder.embed(np.ascontiguousarray(crops[:, :, ::-1])))
        if progress:
            progress("embed", min(start + EMBED_CHUNK, len(keys)), len(keys))
    return {"plain": np.concatenate(plain),
            "flipped": np.concatenate(flipped) if flips else np.zeros((0, EMBEDDING_DIM), np.float32)}


def embed_dataset(
    root: Path,
    keys: Sequence[str],
    detector: FaceDetector,
    embedder,
    *,
    model_id: str,
    detector_id: str,
    margin: int = 0,
    cache_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    variant: str = "colour",
    flips: bool = True,
) -> DatasetEmbeddings:
    """Detect the central face of each image under `root` (relative `keys`), crop it with `margin`, embed it.

    Boxes are cached per (dataset, detector settings) and embeddings per (boxes, model, margin) in `cache_dir`
    (0600 files), so changing the margin re-embeds without re-detecting and a rerun only reads two files.
    `variant` renders every image as another camera would see it first (see render()); `flips` False skips the
    mirror images' embeddings (half the cost when no mirror averaging is measured).
    """
    root, keys = Path(root), sorted(keys)
    missing = [k for k in keys if not (root / k).is_file()]
    if missing:
        raise ProtocolError(f"{len(missing)} image(s) missing under {root}, e.g. {missing[0]}")
    listing = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    box_key = f"boxes|{root.resolve()}|{listing}|{detector_id}"
    if variant != "colour":
        box_key += f"|{variant}"
    tag = (root.name or "dataset") + ("" if variant == "colour" else f"-{variant}")
    boxes = _cached(
        cache_dir and _cache_file(cache_dir, f"{tag}-boxes", box_key),
        box_key,
        lambda: _find_boxes(root, keys, detector, variant, progress),
    )
    emb_key = f"embeddings|{box_key}|{model_id}|margin={margin}" + ("" if flips else "|noflip")
    emb = _cached(
        cache_dir and _cache_file(cache_dir, f"{tag}-{model_id}-m{margin}{'' if flips else '-noflip'}", emb_key),
        emb_key,
        lambda: _embed_boxes(root, keys, boxes["boxes"], embedder, margin, variant, progress, flips),
    )
    return DatasetEmbeddings(keys, boxes["boxes"], boxes["found"].astype(bool), emb["plain"], emb["flipped"])
