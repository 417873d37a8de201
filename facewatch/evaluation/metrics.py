"""Verification arithmetic on plain score arrays: thresholds, k-fold accuracy, TAR at a FAR, ROC, pair scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facewatch.identity.embedding import l2_normalize


def accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs decided right when "same person" means score >= threshold."""
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(same, bool)))


def balanced_accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Mean of the same-person and the different-person accuracy: fair when negatives far outnumber positives."""
    accepted, same = np.asarray(scores) >= threshold, np.asarray(same, bool)
    return float((accepted[same].mean() + (~accepted[~same]).mean()) / 2)


def all_pairs(labels: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same) for every unordered pair i < j of a labelled set: the verification pairs of held-out people."""
    values = np.asarray(labels)
    i, j = np.triu_indices(len(values), k=1)
    return i, j, values[i] == values[j]


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (same person when score >= it) with the highest accuracy on these pairs.

    Candidates are the midpoints between neighbouring distinct scores plus one below and one above them all;
    on a tie the lowest candidate wins, so the choice is deterministic.
    """
    scores = np.asarray(scores, np.float64)
    same = np.asarray(same, bool)
    if len(scores) == 0:
        raise ValueError("best_threshold needs at least one pair")
    order = np.argsort(scores, kind="stable")
    s, positive = scores[order], same[order]
    distinct = np.unique(s)
    candidates = np.concatenate([[distinct[0] - 1.0], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1.0]])
    # Pairs below candidate c are rejected: correct = negatives below + positives at or above.
    below = np.searchsorted(s, candidates, side="left")
    negatives_below = np.concatenate([[0], np.cumsum(~positive)])[below]
    positives_above = positive.sum() - np.concatenate([[0], np.cumsum(positive)])[below]
    return float(candidates[int(np.argmax(negatives_below + positives_above))])


@dataclass(frozen=True)


class FoldResult:
    """K-fold verification: per test fold, the threshold chosen on the other folds and the accuracy it gave."""

    thresholds: np.ndarray
    accuracies: np.ndarray

    @property
    def mean(self) -> float:
        """Mean test accuracy over the folds."""
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        """Standard deviation of the test accuracies (population, as the LFW results are usually quoted)."""
        return float(self.accuracies.std())


def kfold(scores_by_fold: np.ndarray, same: np.ndarray, fold: np.ndarray) -> FoldResult:
    """Run the k-fold protocol: row k of `scores_by_fold` scores every pair as seen when fold k is the test fold.

    For each k the threshold is chosen on the pairs outside fold k and accuracy measured on fold k. Rows differ
    only when scoring learns from the training folds (e.g. their mean embedding); otherwise pass one row repeated.
    """
    scores_by_fold = np.atleast_2d(np.asarray(scores_by_fold, np.float64))
    same, fold = np.asarray(same, bool), np.asarray(fold)
    n_folds = int(fold.max()) + 1
    if scores_by_fold.shape != (n_folds, len(same)):
        raise ValueError(f"scores_by_fold must be ({n_folds}, {len(same)}), got {scores_by_fold.shape}")
    thresholds, accuracies = [], []
    for k in range(n_folds):
        test = fold == k
        t = best_threshold(scores_by_fold[k][~test], same[~test])
        thresholds.append(t)
        accuracies.append(accuracy(scores_by_fold[k][test], same[test], t))
    return FoldResult(np.array(thresholds), np.array(accuracies))


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold that accepts at most `far` of the different-person pairs.

    The threshold is set from the negatives alone: just above the (floor(far * negatives) + 1)-th highest
    negative score; TAR is the fraction of same-person pairs scoring at or above it.
    """
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    negatives = np.sort(scores[~same])[::-1]
    allowed = int(np.floor(far * len(negatives) + 1e-9))
    if allowed >= len(negatives):
        threshold = -np.inf
    else:
        threshold = float(np.nextafter(negatives[allowed], np.inf))
    return float(np.mean(scores[same] >= threshold)), threshold


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct score used as threshold, from the strictest to the most lenient."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    thresholds = np.unique(scores)[::-1]
    far = np.array([np.mean(scores[~same] >= t) for t in thresholds])
    tar = np.array([np.mean(scores[same] >= t) for t in thresholds])
    return far, tar


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """Write a PNG of TAR against FAR (log scale) for each labelled curve; no display needed (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for label, (far, tar) in curves.items():
        keep = far > 0  # a log axis cannot show FAR 0
        ax.plot(far[keep], tar[keep], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate (different people accepted)")
    ax.set_ylabel("true accept rate (same person accepted)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def pair_scores(first: np.ndarray, second: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Similarity of row i of `first` with row i of `second`: cosine, or minus the Euclidean distance."""
    if metric == "cosine":
        return np.asarray(np.sum(l2_normalize(first) * l2_normalize(second), axis=1, dtype=np.float64))
    if metric == "euclidean":
        return -np.linalg.norm(np.asarray(first, np.float64) - np.asarray(second, np.float64), axis=1)
    raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")


def fold_scores(
    first: np.ndarray, second: np.ndarray, fold: np.ndarray, metric: str = "cosine", subtract_mean: bool = False
) -> np.ndarray:
    """Scores of every pair as seen by each test fold (kfold's input); with `subtract_mean`, fold k's scores are
    taken after subtracting the mean embedding of the images in the pairs outside fold k."""
    n_folds = int(np.max(fold)) + 1
    if not subtract_mean:
        return np.tile(pair_scores(first, second, metric), (n_folds, 1))
    rows = []
    for k in range(n_folds):
        train = fold != k
        centre = np.concatenate([first[train], second[train]]).mean(axis=0)
        rows.append(pair_scores(first - centre, second - centre, metric))
    return np.stack(rows)


def own_fold_scores(scores_by_fold: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each pair's score as its own test fold sees it: the scores the ROC and TAR@FAR are computed from."""
    return np.asarray(scores_by_fold)[np.asarray(fold), np.arange(len(fold))]
