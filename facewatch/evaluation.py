"""Measured accuracy: the LFW 10-fold verification protocol and open-set identification on folders of people.

Three parts: the protocol arithmetic (thresholds, k-fold accuracy, TAR at a FAR, ROC) on plain score arrays;
face embeddings of a whole dataset, cached on disk so a rerun costs seconds; and the identification split and
counts (who is enrolled, who is a stranger, who was named, accepted or refused).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facewatch.detectors.base import Face, FaceDetector
from facewatch.embedding import face_crops, l2_normalize
from facewatch.gallery import people_dirs
from facewatch.imageio import image_files, read_rgb
from facewatch.matching import Match
from facewatch.paths import write_private

LFW_IMAGES = "lfw-deepfunneled"
EMBED_CHUNK = 64  # images read, cropped and embedded per step: bounds memory, paces progress reports

# ------------------------------------------------------------------------------------------- LFW pairs file


class ProtocolError(ValueError):
    """A pairs file or dataset folder that does not follow the protocol; the message names the file and line."""


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


# ------------------------------------------------------------------------------------- protocol arithmetic


def accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs decided right when "same person" means score >= threshold."""
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(same, bool)))


def balanced_accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Mean of the same-person and the different-person accuracy: fair when negatives far outnumber positives."""
    accepted, same = np.asarray(scores) >= threshold, np.asarray(same, bool)
    return float((accepted[same].mean() + (~accepted[~same]).mean()) / 2)


def all_pairs(labels: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same) for every unordered pair i < j of a labelled set: the verification pairs of held-out people."""
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), k=1)
    return i, j, labels[i] == labels[j]


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


# ------------------------------------------------------------------------------------------ pair scoring


def pair_scores(first: np.ndarray, second: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Similarity of row i of `first` with row i of `second`: cosine, or minus the Euclidean distance."""
    if metric == "cosine":
        return np.sum(l2_normalize(first) * l2_normalize(second), axis=1, dtype=np.float64)
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


# ---------------------------------------------------------------------------------- dataset embeddings


def central_face(faces: Sequence[Face], image_shape: tuple[int, ...]) -> Face | None:
    """The face whose box centre is nearest the image centre (LFW centres the labelled person), or None."""
    if not faces:
        return None
    centre = np.array([image_shape[1], image_shape[0]], np.float64) / 2
    return min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))


@dataclass(frozen=True)
class DatasetEmbeddings:
    """Per image of a dataset: the face box used, whether MTCNN found it, and embeddings of the crop and its flip."""

    keys: list[str]
    boxes: np.ndarray
    found: np.ndarray
    plain: np.ndarray
    flipped: np.ndarray

    def vectors(self, mirror: bool = False) -> np.ndarray:
        """(N, 512) unit embeddings: of the crop, or with `mirror` the normalised sum of the crop's and its flip's."""
        return l2_normalize(self.plain + self.flipped) if mirror else l2_normalize(self.plain)

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Row indices of the given image keys."""
        index = {k: i for i, k in enumerate(self.keys)}
        return np.array([index[k] for k in keys], np.int64)

    @property
    def no_face(self) -> list[str]:
        """Images where MTCNN found no face: their box is the dataset's median face box instead."""
        return [k for k, f in zip(self.keys, self.found) if not f]


def _cache_file(cache_dir: Path, tag: str, key: str) -> Path:
    """A cache file name that changes whenever the settings it depends on change."""
    return Path(cache_dir) / f"{tag}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _cached(path: Path | None, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays loaded from `path` if it was written for the same `key`, else computed and written there (0600)."""
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) == key:
                    return {name: data[name] for name in data.files if name != "key"}
        except (OSError, ValueError, KeyError):
            pass  # unreadable or foreign cache: recompute
    arrays = compute()
    if path is not None:
        buffer = io.BytesIO()
        np.savez(buffer, key=np.array(key), **arrays)
        write_private(path, buffer.getvalue())
    return arrays


def _find_boxes(root: Path, keys: list[str], detector: FaceDetector, progress) -> dict[str, np.ndarray]:
    """The central face box of every image; images without a face get the median face box of the others,
    scaled to their size (deep-funneled LFW and cropped face sets put the face in the same place)."""
    boxes = np.zeros((len(keys), 4), np.float64)
    sizes = np.zeros((len(keys), 2), np.float64)
    found = np.zeros(len(keys), bool)
    for i, key in enumerate(keys):
        image = read_rgb(root / key)
        sizes[i] = image.shape[1], image.shape[0]
        face = central_face(detector.detect(image), image.shape)
        if face is not None:
            boxes[i], found[i] = face.box, True
        if progress:
            progress("detect", i + 1, len(keys))
    if found.any():
        relative = np.median(boxes[found] / np.tile(sizes[found], 2), axis=0)
    else:
        relative = np.array([0.0, 0.0, 1.0, 1.0])  # nothing found anywhere: use whole images
    boxes[~found] = relative * np.tile(sizes[~found], 2)
    return {"boxes": boxes, "found": found}


def _embed_boxes(root: Path, keys: list[str], boxes: np.ndarray, embedder, margin: int, progress) -> dict:
    """Embeddings of every image's box crop and of its horizontal flip."""
    plain, flipped = [], []
    for start in range(0, len(keys), EMBED_CHUNK):
        crops = np.stack([
            face_crops(read_rgb(root / key), boxes[i], margin=margin)[0]
            for i, key in enumerate(keys[start : start + EMBED_CHUNK], start)
        ])
        plain.append(embedder.embed(crops))
        flipped.append(embedder.embed(np.ascontiguousarray(crops[:, :, ::-1])))
        if progress:
            progress("embed", min(start + EMBED_CHUNK, len(keys)), len(keys))
    return {"plain": np.concatenate(plain), "flipped": np.concatenate(flipped)}


def embed_dataset(
    root: Path,
    keys: Sequence[str],
    detector: FaceDetector,
    embedder,
    *,
    model_id: str,
    detector_id: str,
    margin: int = 0,
    cache_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DatasetEmbeddings:
    """Detect the central face of each image under `root` (relative `keys`), crop it with `margin`, embed it.

    Boxes are cached per (dataset, detector settings) and embeddings per (boxes, model, margin) in `cache_dir`
    (0600 files), so changing the margin re-embeds without re-detecting and a rerun only reads two files.
    """
    root, keys = Path(root), sorted(keys)
    missing = [k for k in keys if not (root / k).is_file()]
    if missing:
        raise ProtocolError(f"{len(missing)} image(s) missing under {root}, e.g. {missing[0]}")
    listing = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    box_key = f"boxes|{root.resolve()}|{listing}|{detector_id}"
    tag = root.name or "dataset"
    boxes = _cached(
        cache_dir and _cache_file(cache_dir, f"{tag}-boxes", box_key),
        box_key,
        lambda: _find_boxes(root, keys, detector, progress),
    )
    emb_key = f"embeddings|{box_key}|{model_id}|margin={margin}"
    emb = _cached(
        cache_dir and _cache_file(cache_dir, f"{tag}-{model_id}-m{margin}", emb_key),
        emb_key,
        lambda: _embed_boxes(root, keys, boxes["boxes"], embedder, margin, progress),
    )
    return DatasetEmbeddings(keys, boxes["boxes"], boxes["found"].astype(bool), emb["plain"], emb["flipped"])


# ----------------------------------------------------------------------------------------------- LFW run


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


# ------------------------------------------------------------------------------------ open-set identification


def identity_images(root: Path) -> tuple[list[str], list[str]]:
    """(image keys relative to root, person names) of a folder with one sub-folder of images per person."""
    root = Path(root)
    keys, names = [], []
    for person in people_dirs(root):
        for image in image_files(person):
            keys.append(f"{person.name}/{image.name}")
            names.append(person.name)
    if not keys:
        raise ProtocolError(f"{root} holds no <person>/<image> files (expected one sub-folder of photos per person)")
    return keys, names


@dataclass(frozen=True)
class IdentifySplit:
    """Which images form the gallery of the enrolled people, and which are probes (truth None = stranger)."""

    gallery: list[int]
    probes: list[int]
    truth: list[str | None]
    enrolled: list[str]


def split_identities(names: Sequence[str], enrolled: int, per_person: int, seed: int = 0) -> IdentifySplit:
    """Seeded open-set split: `enrolled` people (among those with more than `per_person` images) get
    `per_person` gallery images each; every other image of theirs and every image of everyone else is a probe."""
    if per_person < 1:
        raise ValueError(f"gallery images per person must be at least 1, got {per_person}")
    people = sorted(set(names))
    eligible = [p for p in people if names.count(p) > per_person]
    if not 1 <= enrolled <= len(eligible):
        raise ValueError(
            f"cannot enroll {enrolled} people: {len(eligible)} of {len(people)} have more than {per_person} "
            f"images (one must be left to probe with)"
        )
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, size=enrolled, replace=False).tolist())
    gallery: list[int] = []
    for person in chosen:
        rows = [i for i, n in enumerate(names) if n == person]
        gallery.extend(sorted(rng.choice(rows, size=per_person, replace=False).tolist()))
    in_gallery = set(gallery)
    probes = [i for i in range(len(names)) if i not in in_gallery]
    truth = [names[i] if names[i] in chosen else None for i in probes]
    return IdentifySplit(gallery, probes, truth, chosen)


@dataclass(frozen=True)
class IdentifyCounts:
    """Outcome of open-set identification: owners named right, named wrong or refused; strangers accepted."""

    correct: int
    wrong: int
    owners_rejected: int
    owners: int
    strangers_accepted: int
    strangers: int

    @property
    def correct_rate(self) -> float:
        """Enrolled people's probes given their own name."""
        return self.correct / self.owners if self.owners else float("nan")

    @property
    def false_accept_rate(self) -> float:
        """Strangers' probes accepted as someone: the number that matters for a screen lock."""
        return self.strangers_accepted / self.strangers if self.strangers else float("nan")

    @property
    def false_reject_rate(self) -> float:
        """Enrolled people's probes refused as unknown."""
        return self.owners_rejected / self.owners if self.owners else float("nan")


def identification_counts(matches: Sequence[Match], truth: Sequence[str | None]) -> IdentifyCounts:
    """Tally decisions against the truth (None = a stranger who must come out unknown)."""
    owner = [(m.name, t) for m, t in zip(matches, truth, strict=True) if t is not None]
    strangers = [m.name for m, t in zip(matches, truth) if t is None]
    return IdentifyCounts(
        correct=sum(name == t for name, t in owner),
        wrong=sum(name is not None and name != t for name, t in owner),
        owners_rejected=sum(name is None for name, _ in owner),
        owners=len(owner),
        strangers_accepted=sum(name is not None for name in strangers),
        strangers=len(strangers),
    )
