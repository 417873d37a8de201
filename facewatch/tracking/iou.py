"""Box overlap scores and optimal one-to-one matching: the geometry that links boxes across frames and passes."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_boxes(boxes: ArrayLike) -> np.ndarray:
    """Return boxes as a float (N, 4) array of (x1, y1, x2, y2); an empty input becomes shape (0, 4)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as (x1, y1, x2, y2), got shape {arr.shape}")
    return arr


def _areas(b: np.ndarray) -> np.ndarray:
    """Area of each box; inverted or degenerate boxes count as 0."""
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def _intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) areas of a[i] ∩ b[j]."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (zero-area boxes overlap nothing)."""
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def iou_matrix(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """(N, M) intersection over union of boxes a (N, 4) and b (M, 4): how well a box continues a track."""
    a, b = as_boxes(a), as_boxes(b)
    inter = _intersections(a, b)
    return _ratio(inter, _areas(a)[:, None] + _areas(b)[None, :] - inter)


def containment_matrix(inner: ArrayLike, outer: ArrayLike) -> np.ndarray:
    """(N, M) share of each inner box lying inside each outer box: scores a small face inside a big person box."""
    inner, outer = as_boxes(inner), as_boxes(outer)
    return _ratio(_intersections(inner, outer), np.broadcast_to(_areas(inner)[:, None], (len(inner), len(outer))))


def assign(score: ArrayLike, min_score: float) -> list[tuple[int, int]]:
    """Optimal one-to-one (row, col) pairs maximising the total score; pairs under min_score are left out.

    Scores under min_score count as 0 while solving, so they never displace a valid pair.
    """
    score = np.asarray(score, dtype=np.float64)
    if score.ndim != 2:
        raise ValueError(f"score must be a 2-D (rows, cols) matrix, got shape {score.shape}")
    if score.size == 0:
        return []
    gain = np.where(score >= min_score, score, 0.0)
    flip = gain.shape[0] > gain.shape[1]
    pairs = _min_cost_assignment(-(gain.T if flip else gain))
    pairs = [(c, r) for r, c in pairs] if flip else pairs
    return sorted((r, c) for r, c in pairs if score[r, c] >= min_score)


def _min_cost_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Hungarian method (shortest augmenting paths with potentials) for rows <= cols; O(rows² · cols).

    Written here instead of scipy.optimize.linear_sum_assignment: importing scipy.optimize costs ~50 MB of RSS.
    Index 0 of the column arrays is a virtual start column; rows are numbered from 1 in `owner`.
    """
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)  # row and column potentials
    owner = np.zeros(m + 1, dtype=int)  # owner[j]: row (1-based) holding column j, 0 = free
    back = np.zeros(m + 1, dtype=int)  # previous column on the shortest path to column j
    for row in range(1, n + 1):
        owner[0], col = row, 0
        slack = np.full(m + 1, np.inf)
        seen = np.zeros(m + 1, dtype=bool)
        while owner[col] != 0:  # grow the path tree until it reaches a free column
            seen[col] = True
            r = owner[col]
            reduced = cost[r - 1] - u[r] - v[1:]
            closer = ~seen[1:] & (reduced < slack[1:])
            slack[1:][closer], back[1:][closer] = reduced[closer], col
            open_slack = np.where(seen[1:], np.inf, slack[1:])
            nxt = int(np.argmin(open_slack)) + 1
            delta = open_slack[nxt - 1]
            u[owner[seen]] += delta
            v[seen] -= delta
            slack[~seen] -= delta
            col = nxt
        while col:  # flip the path: each column on it passes to the row before it
            owner[col] = owner[back[col]]
            col = back[col]
    return [(int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j]]
