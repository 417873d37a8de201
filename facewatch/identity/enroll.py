"""Enrollment: add a person's photos to the gallery, from files or guided camera capture, written atomically 0600."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from facewatch.detectors.base import Face, FaceDetector, to_rgb
from facewatch.identity.gallery import face_count_problem
from facewatch.imageio import ImageError, read_rgb
from facewatch.paths import private_dir, write_private

log = logging.getLogger("facewatch.identity.enroll")

MIN_SHARPNESS = 60.0  # variance of the Laplacian on the face crop; below it the shot is blurred
MIN_BRIGHTNESS, MAX_BRIGHTNESS = 50.0, 215.0  # mean grey level of the face: too dark / washed out
MIN_MOVE = 0.08  # a new shot's face centre must move this share of the face width from every kept shot


@dataclass(frozen=True)
class Added:
    """One photo enrolled (path written) or refused (reason)."""

    source: str
    path: Path | None
    reason: str = ""


def _next_path(folder: Path, stem: str) -> Path:
    """A free `<stem>.jpg`-style name in `folder` (never overwrites an existing photo)."""
    candidate, n = folder / f"{stem}.jpg", 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}-{n}.jpg"
    return candidate


def _save(folder: Path, stem: str, image_rgb: np.ndarray) -> Path:
    """Write an RGB image as JPEG into the person's folder, atomically and user-only."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise OSError("JPEG encoding failed")
    path = _next_path(folder, stem)
    write_private(path, data.tobytes())
    return path


def shot_problem(image_rgb: np.ndarray, faces: list[Face]) -> str | None:
    """Why a photo or camera shot is unusable for enrollment (not exactly one clear face), or None if it is fine."""
    problem = face_count_problem(len(faces))
    if problem:
        return problem
    x1, y1, x2, y2 = (int(round(v)) for v in faces[0].box)
    h, w = image_rgb.shape[:2]
    crop = image_rgb[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
    if crop.size == 0:
        return "face box outside the image"
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    brightness = float(grey.mean())
    if brightness < MIN_BRIGHTNESS:
        return f"too dark (mean {brightness:.0f})"
    if brightness > MAX_BRIGHTNESS:
        return f"too bright (mean {brightness:.0f})"
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    if sharpness < MIN_SHARPNESS:
        return f"blurred (sharpness {sharpness:.0f} < {MIN_SHARPNESS:.0f})"
    return None


def enroll_images(folder: Path, images: Iterable[Path], detector: FaceDetector) -> list[Added]:
    """Copy each usable photo (exactly one clear face) into `folder`; report each refused one by name."""
    private_dir(folder)
    results = []
    for src in images:
        try:
            image = read_rgb(Path(src))
        except ImageError as exc:
            results.append(Added(str(src), None, exc.reason))
            continue
        problem = shot_problem(image, detector.detect(image))
        if problem:
            results.append(Added(str(src), None, problem))
            continue
        results.append(Added(str(src), _save(folder, Path(src).stem, image)))
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
                       say: Callable[[str], None] = print, timeout_s: float = 60.0) -> list[Added]:
    """Guided capture: keep `count` shots with exactly one clear face in varied positions, telling the user why
    a shot was refused; stops after `timeout_s` with what it has. Frames are BGR, as FrameSource gives them."""
    private_dir(folder)
    kept: list[Face] = []
    results: list[Added] = []
    last_hint, deadline = "", time.monotonic() + timeout_s
    say(f"Look at the camera; move your head a little between shots ({count} shots).")
    for frame in frames:
        if len(kept) >= count or time.monotonic() > deadline:
            break
        image = to_rgb(frame)
        faces = detector.detect(image)
        problem = shot_problem(image, faces) or (None if _varied(faces[0], kept) else "move your head a little")
        if problem:
            if problem != last_hint:
                say(f"  waiting: {problem}")
                last_hint = problem
            continue
        kept.append(faces[0])
        path = _save(folder, f"camera-{time.strftime('%Y%m%d-%H%M%S')}", image)
        results.append(Added("camera", path))
        say(f"  shot {len(kept)}/{count} saved")
        last_hint = ""
    return results
