"""Reading user images (gallery photos, enrollment files) into RGB arrays, with errors that name the file.

Every image is hostile input, and its decoding is bounded whatever the file claims to be:
 1. Only a regular file of at most MAX_FILE_BYTES is read, opened non-blocking (a FIFO, a device or a 64 GB
    sparse file is refused before a byte is read into memory).
 2. Pillow must parse the header as one of DECODABLE formats and the size it finds must be at most MAX_PIXELS;
    anything else (a Radiance HDR or an EXR named .jpg, formats only OpenCV reads) is refused undecoded.
 3. OpenCV decodes with the same pixel limit set for all of its decoders (OPENCV_IO_MAX_IMAGE_PIXELS, set in
    facewatch/__init__.py before cv2 is imported), so a header that lies to Pillow still cannot exhaust memory.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np

from facewatch import MAX_IMAGE_PIXELS
from facewatch.paths import FileTooLarge, NotRegularFile, read_regular

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm", ".ppm", ".tif", ".tiff"}
MAX_PIXELS = MAX_IMAGE_PIXELS  # a bigger "photo" is refused instead of exhausting memory
MAX_FILE_BYTES = 64 * 1024 * 1024  # far above any camera JPEG; a bigger file is not read at all
DECODABLE = {"JPEG", "PNG", "BMP", "WEBP", "PPM", "TIFF"}  # Pillow format names of IMAGE_SUFFIXES
UNREADABLE = "not a readable image (truncated, corrupt or not an image format)"


class ImageError(ValueError):
    """An image file that cannot be used; the message starts with the file name, `reason` is the rest."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_image_bytes(path: Path) -> bytes:
    """Rule 1: the bytes of an image file, bounded; ImageError naming the file otherwise."""
    try:
        raw = read_regular(path, MAX_FILE_BYTES)
    except NotRegularFile as exc:
        raise ImageError(path, f"is {exc.kind}, not an image file") from None
    except FileTooLarge as exc:
        raise ImageError(path, f"file too large ({exc.size // 1_000_000} MB, over {MAX_FILE_BYTES // 1_000_000} MB)") from None
    except OSError as exc:
        raise ImageError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not raw:
        raise ImageError(path, "empty file")
    return raw


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB (grey and alpha converted); ImageError naming the file otherwise."""
    return decode_rgb(read_image_bytes(path), path)


def decode_rgb(raw: bytes, path: Path) -> np.ndarray:
    """Decode image bytes read from `path` (named in errors) by rules 2 and 3."""
    problem = _header_problem(raw)
    if problem:
        raise ImageError(path, problem)
    try:
        image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV's own pixel limit (rule 3) or a decoder failure
        image = None
    if image is None:
        raise ImageError(path, UNREADABLE)
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(path, f"image too large ({image.shape[1]}x{image.shape[0]})")
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _header_problem(raw: bytes) -> str | None:
    """Rule 2: why the header alone refuses the image (unknown format, too many pixels), or None.

    A 442 KB PNG can claim 432 MB of pixels; Pillow reads only the header here and decodes nothing.
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(raw), formats=sorted(DECODABLE)) as header:
                width, height = header.size
        except Image.DecompressionBombError:
            return f"image too large (over {MAX_PIXELS // 1_000_000} megapixels)"
        except Exception:  # not a format facewatch decodes, or a damaged header: never handed to OpenCV
            return UNREADABLE
    return f"image too large ({width}x{height})" if width * height > MAX_PIXELS else None


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted, by suffix (case-insensitive); hidden files skipped."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
