"""The `--show` window: the frame with person boxes, their names and the person count (OpenCV HighGUI)."""

from __future__ import annotations

import cv2
import numpy as np

from facewatch.daemon import State
from facewatch.tracking.tracks import UNKNOWN, Track

WINDOW = "facewatch"
COLOURS = {None: (0, 200, 255), UNKNOWN: (0, 0, 255)}  # BGR: unverified amber, stranger red, known green
KNOWN = (0, 200, 0)


def annotate(frame: np.ndarray, tracks: list[Track], state: State) -> np.ndarray:
    """A copy of the frame with each track's box and identity, and the count and status in the corner."""
    out = frame.copy()
    for track in tracks:
        x1, y1, x2, y2 = (int(v) for v in track.box)
        colour = COLOURS.get(track.identity, KNOWN)
        label = track.identity or "unverified"
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(out, label, (x1 + 4, max(16, y1 + 18)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2)
    cv2.putText(out, f"people: {state.people}  {state.status}", (8, out.shape[0] - 10),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    return out


class Preview:
    """Shows annotated frames; pressing q or Esc in the window asks the daemon to stop."""

    def __init__(self, on_quit) -> None:
        self.on_quit = on_quit

    def __call__(self, frame: np.ndarray, tracks: list[Track], state: State) -> None:
        """Draw one frame (an on_frame callback of the daemon loop)."""
        cv2.imshow(WINDOW, annotate(frame, tracks, state))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.on_quit()

    def close(self) -> None:
        """Close the window."""
        cv2.destroyWindow(WINDOW)
