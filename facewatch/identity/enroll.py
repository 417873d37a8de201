"""Enrollment: add a person's photos to the gallery, from files or guided camera capture, written atomically 0600.

Writes go through identity/enrolled.py: one writer of a gallery at a time, every photo written is recorded (so
`forget` deletes only those), and a photo already enrolled, under this name or another, is refused.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from facewatch.config import Enroll as EnrollLimits
from facewatch.detectors.base import Face, FaceDetector, to_rgb
from facewatch.identity.embedding import face_crops
from facewatch.identity.enrolled import Record, file_sha256, writer
from facewatch.identity.gallery import face_count_problem
from facewatch.imageio import ImageError, decode_rgb, read_image_bytes
from facewatch.paths import private_dir, write_private

log = logging.getLogger("facewatch.identity.enroll")

MIN_MOVE = 0.08  # a new shot's face centre must move this share of the face width from every kept shot


@dataclass(frozen=True)
class Added:
    """One photo enrolled (path written) or refused (reason)."""

    source: str
    path: Path | None
    reason: str = ""


def _next_path(folder: Path, stem: str) -> Path:
    """A free `<stem>.jpg`-style name in `folder` (never overwrites an existing photo, or a link planted there)."""
    candidate, n = folder / f"{stem}.jpg", 1
    while os.path.lexists(candidate):
        n += 1
        candidate = folder / f"{stem}-{n}.jpg"
    return candidate


def _save(folder: Path, stem: str, image_rgb: np.ndarray, record: Record, source: str | None = None) -> Path:
    """Write an RGB image as JPEG into the person's folder, atomically and user-only, and record it."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise OSError("JPEG encoding failed")
    path = _next_path(folder, stem)
    write_private(path, data.tobytes())
    written = file_sha256(data.tobytes())
    record.add(path, written, source or written)
    record.save()
    return path


def _duplicate(record: Record, name: str, source: str) -> str | None:
    """Why a photo with these bytes cannot be added for `name` (already enrolled), or None."""
    owner = record.enrolled_as(source)
    if owner is None:
        return None
    return "already enrolled" if owner == name else f"the same photo is already enrolled as {owner}"


def default_limits() -> EnrollLimits:
    """The packaged config's `enroll` limits (for callers without a loaded config)."""
    from facewatch.config import DEFAULT_CONFIG, load_config

    return load_config(DEFAULT_CONFIG).enroll


def shot_problem(image_rgb: np.ndarray, faces: list[Face], limits: EnrollLimits | None = None) -> str | None:
    """Why a photo or camera shot is unusable for enrollment (not exactly one clear face), or None if it is fine.

    The face is judged as FaceNet will see it, resized to 160x160, so a big photo of a face and a small one are
    held to the same limits; darkness alone is no reason (a face MTCNN finds in a dim room is enrollable)."""
    limits = limits or default_limits()
    problem = face_count_problem(len(faces))
    if problem:
        return problem
    x1, y1, x2, y2 = faces[0].box
    h, w = image_rgb.shape[:2]
    if x2 <= max(x1, 0) or y2 <= max(y1, 0) or x1 >= w or y1 >= h:
        return "face box outside the image"
    grey = cv2.cvtColor(face_crops(image_rgb, faces[0].box)[0], cv2.COLOR_RGB2GRAY).astype(np.float64)
    brightness, contrast = float(grey.mean()), float(grey.std())
    if contrast < limits.min_contrast:
        return f"too dark or flat to see the face (contrast {contrast:.0f} < {limits.min_contrast:.0f})"
    if brightness > limits.max_brightness:
        return f"too bright (mean {brightness:.0f} > {limits.max_brightness:.0f})"
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    if sharpness < limits.min_sharpness:
        return f"blurred (sharpness {sharpness:.0f} < {limits.min_sharpness:.0f})"
    return None


def _drop_if_empty(folder: Path, existed: bool) -> None:
    """Remove a person folder this enrollment created when nothing was added, so no empty person is listed."""
    if not existed and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def enroll_images(folder: Path, images: Iterable[Path], detector: FaceDetector,
                  limits: EnrollLimits | None = None) -> list[Added]:
    """Copy each usable photo (exactly one clear face) into `folder`; report each refused one by name."""
    results = []
    with writer(folder.parent):
        existed = folder.is_dir()
        private_dir(folder)
        record = Record.load(folder.parent)
        for src in images:
            try:
                raw = read_image_bytes(Path(src))
                image = decode_rgb(raw, Path(src))
            except ImageError as exc:
                results.append(Added(str(src), None, exc.reason))
                continue
            source = file_sha256(raw)
            problem = _duplicate(record, folder.name, source) or shot_problem(image, detector.detect(image), limits)
            if problem:
                results.append(Added(str(src), None, problem))
                continue
            results.append(Added(str(src), _save(folder, Path(src).stem, image, record, source)))
        _drop_if_empty(folder, existed)
    return results


def _varied(face: Face, kept: list[Face]) -> bool:
    """True when the face moved enough from every kept shot, so the gallery gets different poses."""
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    width = face.box[2] - face.box[0]
    for other in kept:
        ox, oy = (other.box[0] + other.box[2]) / 2, (other.box[1] + other.box[3]) / 2
        if np.hypot(cx - ox, cy - oy) < MIN_MOVE * width:
            return False
    return True


def enroll_from_frames(folder: Path, frames: Iterable[np.ndarray], detector: FaceDetector, count: int,
                       say: Callable[[str], None] = print, timeout_s: float = 60.0,
                       limits: EnrollLimits | None = None) -> list[Added]:
    """Guided capture: keep `count` shots with exactly one clear face in varied positions, telling the user why
    a shot was refused; stops after `timeout_s` with what it has. Frames are BGR, as FrameSource gives them."""
    with writer(folder.parent):
        existed = folder.is_dir()
        private_dir(folder)
        results = _capture(folder, frames, detector, count, say, timeout_s, Record.load(folder.parent),
                           limits or default_limits())
        _drop_if_empty(folder, existed)
    return results


def _capture(folder: Path, frames: Iterable[np.ndarray], detector: FaceDetector, count: int,
             say: Callable[[str], None], timeout_s: float, record: Record, limits: EnrollLimits) -> list[Added]:
    """enroll_from_frames' loop, run while it holds the gallery's writer lock."""
    kept: list[Face] = []
    results: list[Added] = []
    last_hint, deadline = "", time.monotonic() + timeout_s
    say(f"Look at the camera; move your head a little between shots ({count} shots).")
    for frame in frames:
        if len(kept) >= count or time.monotonic() > deadline:
            break
        image = to_rgb(frame)
        faces = detector.detect(image)
        problem = shot_problem(image, faces, limits) or (None if _varied(faces[0], kept) else "move your head a little")
        if problem:
            if problem != last_hint:
                say(f"  waiting: {problem}")
                last_hint = problem
            continue
        kept.append(faces[0])
        path = _save(folder, f"camera-{time.strftime('%Y%m%d-%H%M%S')}", image, record)
        results.append(Added("camera", path))
        say(f"  shot {len(kept)}/{count} saved")
        last_hint = ""
    return results
