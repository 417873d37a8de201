"""Real clips cut and read frame-exactly: the project's one clip writer (the benches use it too) and a frame reader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from helpers.shared import need


def write_segment(src: Path, frames: range, out: Path) -> Path:
    """Write frames [start, stop) of a clip to a new video (a real segment of it); ValueError if the clip is short."""
    cap = cv2.VideoCapture(str(src))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), cap.get(cv2.CAP_PROP_FPS), size)
    cap.set(cv2.CAP_PROP_POS_FRAMES, frames.start)
    try:
        for index in frames:
            ok, frame = cap.read()
            if not ok:
                raise ValueError(f"{src} ends before frame {index}")
            writer.write(frame)
    finally:
        writer.release()
        cap.release()
    return out


def read_frames(path: Path, indexes: set[int]) -> dict[int, np.ndarray]:
    """Decode a clip front to back (exact frame numbers, unlike seeking) and keep the BGR frames at `indexes`."""
    capture = cv2.VideoCapture(str(need(path)))
    frames = {}
    for index in range(max(indexes) + 1):
        assert capture.grab(), f"{path.name} ended before frame {index}"
        if index in indexes:
            frames[index] = capture.retrieve()[1]
    capture.release()
    return frames


def write_video(path: Path, frames: Iterator[np.ndarray], fps: float) -> Path:
    """Encode frames into an mp4 file (the codec's artefacts are part of what a replay sees)."""
    writer = None
    for frame in frames:
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
        writer.write(frame)
    if writer is None:
        raise ValueError(f"{path}: no frames to write")
    writer.release()
    return path
