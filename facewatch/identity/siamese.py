"""The Siamese head: a small MLP that scores a pair of FaceNet embeddings as the same person, in [0, 1].

Features of a pair (|a - b| and a * b, both symmetric in a and b) → Linear → ReLU → Linear → sigmoid. It is
trained with torch on embeddings grouped by identity (`train_head`); inference (`SiameseHead`) is plain numpy
so the daemon needs no torch to use it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facewatch.identity.embedding import EMBEDDING_DIM
from facewatch.weights.registry import ModelError

FEATURES = 2 * EMBEDDING_DIM
MAX_PAIRS_PER_STEP = 65_536  # pairs scored per numpy step in similarity(): bounds memory for big galleries


def pair_features(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(n, 1024) features of n embedding pairs: |a - b| then a * b; swapping a and b gives the same features."""
    first, second = np.asarray(first, np.float32), np.asarray(second, np.float32)
    return np.concatenate([np.abs(first - second), first * second], axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow for large |x|."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class HeadError(ModelError):
    """A Siamese head file that is missing or cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class SiameseHead:
    """Weights of the head, (1024, H) w1, (H,) b1, (H,) w2 and scalar b2, with a numpy forward pass."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: float

    @classmethod
    def load(cls, path: Path) -> SiameseHead:
        """Read a head saved by `save`; HeadError naming the file when it is missing or malformed."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                head = cls(data["w1"], data["b1"], data["w2"], float(data["b2"]))
        except FileNotFoundError:
            raise HeadError(f"Siamese head weights {path} do not exist (train them: facewatch train-siamese)") from None
        except (OSError, ValueError, KeyError) as exc:
            raise HeadError(f"{path} is not a Siamese head weights file: {exc}") from exc
        hidden = head.b1.shape[0] if head.b1.ndim == 1 else -1
        if head.w1.shape != (FEATURES, hidden) or head.w2.shape != (hidden,):
            raise HeadError(f"{path}: weight shapes {head.w1.shape}, {head.b1.shape}, {head.w2.shape} do not fit "
                            f"a head on {FEATURES} features")
        return head

    def to_bytes(self) -> bytes:
        """The .npz bytes that `load` reads back."""
        buffer = io.BytesIO()
        np.savez(buffer, w1=self.w1.astype(np.float32), b1=self.b1.astype(np.float32),
                 w2=self.w2.astype(np.float32), b2=np.float32(self.b2))
        return buffer.getvalue()

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(n,) logits of (n, 1024) pair features."""
        hidden = np.maximum(np.asarray(features, np.float32) @ self.w1 + self.b1, 0.0)
        return hidden @ self.w2 + self.b2

    def score_pairs(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """(n,) probability in [0, 1] that row i of `first` and row i of `second` show the same person."""
        return _sigmoid(self.logits(pair_features(first, second)))

    def similarity(self, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(N, M) same-person probability of every probe against every gallery embedding."""
        probes, gallery = np.asarray(probes, np.float32), np.asarray(gallery, np.float32)
        n, m = len(probes), len(gallery)
        out = np.empty(n * m, np.float32)
        rows, cols = np.divmod(np.arange(n * m), max(m, 1))
        for start in range(0, n * m, MAX_PAIRS_PER_STEP):
            part = slice(start, start + MAX_PAIRS_PER_STEP)
            out[part] = self.score_pairs(probes[rows[part]], gallery[cols[part]])
        return out.reshape(n, m)


# ------------------------------------------------------------------------------------------------- training


def torch_module(head: SiameseHead):
    """The head as a torch module (Linear, ReLU, Linear) holding the same weights: its logits equal `head.logits`."""
    import torch

    hidden = head.b1.shape[0]
    module = torch.nn.Sequential(torch.nn.Linear(FEATURES, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    with torch.no_grad():
        module[0].weight.copy_(torch.from_numpy(np.ascontiguousarray(head.w1.T, np.float32)))
        module[0].bias.copy_(torch.from_numpy(np.asarray(head.b1, np.float32)))
        module[2].weight.copy_(torch.from_numpy(np.asarray(head.w2, np.float32)[None]))
        module[2].bias.fill_(float(head.b2))
    return module


def _head_of(module) -> SiameseHead:
    """Read a torch module built by torch_module back into numpy weights."""
    return SiameseHead(
        w1=module[0].weight.detach().numpy().T.copy(),
        b1=module[0].bias.detach().numpy().copy(),
        w2=module[2].weight.detach().numpy()[0].copy(),
        b2=float(module[2].bias.detach().numpy()[0]),
    )


def sample_pairs(
    labels: Sequence | np.ndarray, rng: np.random.Generator, max_positives_per_person: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same) index pairs for one epoch: up to `max_positives_per_person` same-person pairs per identity
    and as many different-person pairs, drawn uniformly; people with one image only serve as negatives."""
    labels = np.asarray(labels)
    firsts, seconds = [], []
    for person in np.unique(labels):
        rows = np.flatnonzero(labels == person)
        if len(rows) < 2:
            continue
        i, j = np.triu_indices(len(rows), k=1)
        keep = rng.permutation(len(i))[:max_positives_per_person]
        firsts.append(rows[i[keep]])
        seconds.append(rows[j[keep]])
    if not firsts:
        raise ValueError("training needs at least one person with two or more images")
    pos_i, pos_j = np.concatenate(firsts), np.concatenate(seconds)
    neg_i, neg_j = np.empty(0, np.int64), np.empty(0, np.int64)
    while len(neg_i) < len(pos_i):  # redraw the few random pairs that hit the same person
        a = rng.integers(0, len(labels), 2 * len(pos_i))
        b = rng.integers(0, len(labels), 2 * len(pos_i))
        different = labels[a] != labels[b]
        neg_i, neg_j = np.concatenate([neg_i, a[different]]), np.concatenate([neg_j, b[different]])
    neg_i, neg_j = neg_i[: len(pos_i)], neg_j[: len(pos_i)]
    same = np.concatenate([np.ones(len(pos_i), bool), np.zeros(len(neg_i), bool)])
    return np.concatenate([pos_i, neg_i]), np.concatenate([pos_j, neg_j]), same


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run; all of them go into the head's JSON record."""

    hidden: int = 64
    epochs: int = 30
    batch: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    max_positives_per_person: int = 20
    seed: int = 0


def train_head(embeddings: np.ndarray, labels: Sequence, settings: TrainSettings = TrainSettings()) -> SiameseHead:
    """Train a head with binary cross-entropy on pairs resampled every epoch; seeded, so reruns give equal weights."""
    import torch

    embeddings = np.asarray(embeddings, np.float32)
    if len(embeddings) != len(labels):
        raise ValueError(f"{len(embeddings)} embeddings but {len(labels)} labels")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    module = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, settings.hidden), torch.nn.ReLU(), torch.nn.Linear(settings.hidden, 1)
    )
    optimiser = torch.optim.Adam(module.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(settings.epochs):
        first, second, same = sample_pairs(labels, rng, settings.max_positives_per_person)
        order = rng.permutation(len(same))
        for start in range(0, len(order), settings.batch):
            batch = order[start : start + settings.batch]
            features = torch.from_numpy(pair_features(embeddings[first[batch]], embeddings[second[batch]]))
            target = torch.from_numpy(same[batch].astype(np.float32))
            optimiser.zero_grad()
            loss = loss_fn(module(features)[:, 0], target)
            loss.backward()
            optimiser.step()
    return _head_of(module.eval())
