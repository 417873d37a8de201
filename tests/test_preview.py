"""The --show preview draws each track's box in its identity's colour, its name, and the person count."""

from __future__ import annotations

import numpy as np

from facewatch.daemon import State
from facewatch.tracking.tracks import Track
from facewatch.ui.preview import annotate


def test_annotate_draws_boxes_names_and_count():
    frame = np.zeros((240, 320, 3), np.uint8)
    tracks = [Track(1, np.array([10, 10, 100, 200.0]), "alice", 0.8, 0.0),
              Track(2, np.array([150, 10, 250, 200.0]), "unknown", 0.1, 0.0),
              Track(3, np.array([260, 50, 310, 150.0]), None, 0.0, 0.0)]
    out = annotate(frame, tracks, State(status="watching", people=3))
    assert frame.sum() == 0  # the daemon's frame is left untouched
    assert tuple(out[100, 10]) == (0, 200, 0)  # known: green left edge
    assert tuple(out[100, 150]) == (0, 0, 255)  # stranger: red
    assert tuple(out[100, 260]) == (0, 200, 255)  # unverified: amber
    assert out[225:240, 0:150].any()  # "people: 3  watching" written along the bottom
