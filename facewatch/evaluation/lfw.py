"""The LFW 10-fold verification protocol: the pairs file and the run over a dataset's embeddings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facewatch.evaluation.datasets import DatasetEmbeddings, ProtocolError
from facewatch.evaluation.metrics import (
    FoldResult,
    fold_scores,
    kfold,
    own_fold_scores,
    roc_curve,
    tar_at_far,
)

LFW_IMAGES = "lfw-deepfunneled"


@dataclass(frozen=True)


class Pairs:
    """The pairs of a verification protocol: image keys (relative paths), same-person flags and 0-based folds."""

    first: list[str]
    second: list[str]
    same: np.ndarray
    fold: np.ndarray

    @property
    def images(self) -> list[str]:
        """Every image the pairs need, each once, sorted."""
        return sorted(set(self.first) | set(self.second))

    @property
    def n_folds(self) -> int:
        """How many folds the pairs are split into."""
        return int(self.fold.max()) + 1 if len(self.fold) else 0


def lfw_key(name: str, number: int) -> str:
    """The path of one LFW image relative to lfw-deepfunneled/: <name>/<name>_<number:04d>.jpg."""
    return f"{name}/{name}_{number:04d}.jpg"


def read_pairs(path: Path) -> Pairs:
    """Parse LFW's pairs.txt: header "<folds> <n>", then per fold n same-person lines then n different-person ones.

    Same: "name i j"; different: "name1 i name2 j". Any other shape is a ProtocolError naming the line.
    """
    path = Path(path)
    try:
        lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    lines = [fields for fields in lines if fields]
    try:
        n_folds, per_fold = (int(v) for v in lines[0])
    except (IndexError, ValueError):
        raise ProtocolError(f"{path}: line 1 must be '<folds> <pairs per class>', e.g. '10 300'") from None
    expected = n_folds * 2 * per_fold
    if len(lines) - 1 != expected:
        raise ProtocolError(
            f"{path}: header promises {n_folds}x2x{per_fold} = {expected} pairs, found {len(lines) - 1}"
        )
    first, second, same, fold = [], [], [], []
    for row, fields in enumerate(lines[1:]):
        is_same = row % (2 * per_fold) < per_fold
        try:
            if is_same and len(fields) == 3:
                a, b = lfw_key(fields[0], int(fields[1])), lfw_key(fields[0], int(fields[2]))
            elif not is_same and len(fields) == 4:
                a, b = lfw_key(fields[0], int(fields[1])), lfw_key(fields[2], int(fields[3]))
            else:
                raise ValueError
        except ValueError:
            want = "'name i j' (same person)" if is_same else "'name1 i name2 j' (different people)"
            raise ProtocolError(f"{path}: pair line {row + 2} is {' '.join(fields)!r}, expected {want}") from None
        first.append(a)
        second.append(b)
        same.append(is_same)
        fold.append(row // (2 * per_fold))
    return Pairs(first, second, np.array(same, bool), np.array(fold, np.int64))


@dataclass(frozen=True)


class LfwResult:
    """One LFW 10-fold evaluation: per-fold results, TAR at the FAR asked for, images without a face, ROC."""

    folds: FoldResult
    tar: float
    far: float
    far_threshold: float
    no_face: list[str]
    n_images: int
    roc: tuple[np.ndarray, np.ndarray]


def lfw_verification(
    pairs: Pairs,
    embeddings: DatasetEmbeddings,
    *,
    mirror: bool = False,
    metric: str = "cosine",
    subtract_mean: bool = False,
    far: float = 1e-3,
    scorer: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> LfwResult:
    """The 10-fold protocol over `pairs` with these embeddings; `scorer(first, second, fold)`, if given, replaces
    the cosine/Euclidean scoring and must return kfold's (folds, pairs) score array (e.g. a per-fold trained head)."""
    vectors = embeddings.vectors(mirror)
    first, second = vectors[embeddings.rows(pairs.first)], vectors[embeddings.rows(pairs.second)]
    if scorer is None:
        by_fold = fold_scores(first, second, pairs.fold, metric, subtract_mean)
    else:
        by_fold = scorer(first, second, pairs.fold)
    own = own_fold_scores(by_fold, pairs.fold)
    tar, threshold = tar_at_far(own, pairs.same, far)
    images = pairs.images
    return LfwResult(
        folds=kfold(by_fold, pairs.same, pairs.fold),
        tar=tar,
        far=far,
        far_threshold=threshold,
        no_face=sorted(set(embeddings.no_face) & set(images)),
        n_images=len(images),
        roc=roc_curve(own, pairs.same),
    )
