"""Reading user images (gallery photos, enrollment files) into RGB arrays, with errors that name the file."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm", ".ppm", ".tif", ".tiff"}
MAX_PIXELS = 40_000_000  # a bigger "photo" is refused instead of exhausting memory


class ImageError(ValueError):
    """An image file that cannot be used; the message starts with the file name, `reason` is the rest."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB (grey and alpha converted); ImageError naming the file otherwise."""
    try:
        raw = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode handles non-ASCII paths everywhere
    except OSError as exc:
        raise ImageError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if raw.size == 0:
        raise ImageError(path, "empty file")
    too_large = _header_too_large(raw)
    if too_large:
        raise ImageError(path, too_large)
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(path, "not a readable image (truncated, corrupt or not an image format)")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(path, f"image too large ({image.shape[1]}x{image.shape[0]})")
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _header_too_large(raw: np.ndarray) -> str | None:
    """Refuse an oversized image from its header alone, before decoding (a 442 KB PNG can need 432 MB of pixels).

    Returns the reason, or None when the size is fine or Pillow cannot parse the header (OpenCV then decides).
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(raw)) as header:  # lazy: reads the header, decodes no pixels
                width, height = header.size
        except Image.DecompressionBombError:
            return f"image too large (over {MAX_PIXELS // 1_000_000} megapixels)"
        except Exception:  # not a format Pillow knows, or a damaged header: OpenCV gets the final word
            return None
    return f"image too large ({width}x{height})" if width * height > MAX_PIXELS else None


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted, by suffix (case-insensitive); hidden files skipped."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
