"""Footage of a spoof: a printed photo of a face held up to a webcam, still or moved by hand (liveness tests, bench)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

FOCAL_PX = 600.0  # a webcam's focal length in pixels at 640x480 (about 56 degrees across)


def _room(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A muted, smoothly varying background (a wall, a shelf) with some fine texture, float BGR."""
    w, h = size
    coarse = rng.uniform(70, 170, (5, 7, 1)) + rng.uniform(-20, 20, (5, 7, 3))
    room = cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(room + rng.normal(0, 4, (h, w, 3)).astype(np.float32), 0, 255)


def _print_card(photo_bgr: np.ndarray, width: int) -> np.ndarray:
    """The photo printed `width` pixels wide with a white margin, float BGR."""
    h, w = photo_bgr.shape[:2]
    image = cv2.resize(photo_bgr, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    margin = max(4, width // 25)
    card = cv2.copyMakeBorder(image, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(235, 235, 235))
    return card.astype(np.float32)


def _card_homography(card_shape: tuple[int, ...], size: tuple[int, int], pose: dict[str, float]) -> np.ndarray:
    """Where a flat card lands in the image when held at `pose` (shift px, roll/pitch/yaw deg, scale) before a
    pinhole camera: the 3x3 homography from card pixels to image pixels."""
    ch, cw = card_shape[:2]
    corners = np.array([[-cw, -ch, 0], [cw, -ch, 0], [cw, ch, 0], [-cw, ch, 0]], float) / 2 * pose["scale"]
    pitch, yaw, roll = np.radians([pose["pitch"], pose["yaw"], pose["roll"]])
    rx = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    ry = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    rz = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    points = corners @ (rz @ ry @ rx).T
    depth = points[:, 2] + FOCAL_PX  # the card's centre at one focal length: its pixels keep their size
    x = FOCAL_PX * points[:, 0] / depth + size[0] / 2 + pose["tx"]
    y = FOCAL_PX * points[:, 1] / depth + size[1] / 2 + pose["ty"]
    src = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
    return cv2.getPerspectiveTransform(src, np.float32(np.column_stack([x, y])))


STILL_POSE = {"tx": 0.0, "ty": 0.0, "roll": 3.0, "pitch": 5.0, "yaw": -4.0, "scale": 1.0, "gain": 1.0}
# How far a hand moves a held print (amplitude of slow waves of 0.15-1 Hz): px, degrees, scale and light factors.
HAND = {"tx": 50.0, "ty": 30.0, "roll": 10.0, "pitch": 18.0, "yaw": 18.0, "scale": 0.12, "gain": 0.15}


def spoof_frames(photo_bgr: np.ndarray, moved: bool, seconds: float, fps: float = 30.0,
                 size: tuple[int, int] = (640, 480), card_width: int = 260, noise: float = 2.5,
                 seed: int = 0) -> Iterator[np.ndarray]:
    """Frames of a webcam filming a print of `photo_bgr` held up in a room: still, or moved by hand (every pose
    parameter a sum of two slow waves, plus brightness), with Gaussian camera noise; BGR uint8, deterministic."""
    rng = np.random.default_rng(seed)
    room = _room(size, rng)
    card = _print_card(photo_bgr, card_width)
    opaque = np.ones(card.shape[:2], np.float32)
    waves = {k: (rng.uniform(0.15, 0.5), rng.uniform(0.5, 1.0), *rng.uniform(0, 2 * math.pi, 2)) for k in HAND}
    for i in range(round(seconds * fps)):
        t = i / fps
        pose = dict(STILL_POSE)
        if moved:
            for key, (f1, f2, p1, p2) in waves.items():
                swing = 0.7 * math.sin(2 * math.pi * f1 * t + p1) + 0.3 * math.sin(2 * math.pi * f2 * t + p2)
                pose[key] = (1.0 if key in ("scale", "gain") else 0.0) + HAND[key] * swing
        homography = _card_homography(card.shape, size, pose)
        image = cv2.warpPerspective(card, homography, size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpPerspective(opaque, homography, size, flags=cv2.INTER_LINEAR)[..., None]
        frame = room * (1 - alpha) + image * alpha * pose["gain"] + rng.normal(0, noise, room.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8)
