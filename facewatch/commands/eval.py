"""`facewatch eval lfw|identify`: measured verification (LFW 10-fold) and open-set identification accuracy."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from facewatch.cli import UserError
from facewatch.config import Config, load_config


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """`eval lfw` and `eval identify`, sharing the pipeline options."""
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    lfw = sub.add_parser("lfw", help="LFW 10-fold verification accuracy, TAR at a FAR and an ROC plot",
                         description="LFW 10-fold verification: each fold's threshold is chosen on the other nine.")
    lfw.add_argument("--data", type=Path, required=True, help="LFW folder holding pairs.txt and lfw-deepfunneled/")
    lfw.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine", help="pair score (default cosine)")
    lfw.add_argument("--subtract-mean", action="store_true",
                     help="subtract the training folds' mean embedding before scoring")
    lfw.add_argument("--far", type=float, default=1e-3, help="false accept rate for the TAR figure (default 1e-3)")
    lfw.add_argument("--roc", type=Path, default=Path("lfw-roc.png"), help="ROC plot to write (default ./lfw-roc.png)")
    ident = sub.add_parser("identify", help="open-set identification: names, strangers accepted, owners refused",
                           description="Enroll some people of a folder, probe with everyone's other photos; "
                                       "cosine and the Siamese head side by side.")
    ident.add_argument("--data", type=Path, required=True, help="folder with one sub-folder of photos per person")
    ident.add_argument("--gallery-per-person", type=int, default=3, metavar="K",
                       help="photos enrolled per person (default 3)")
    ident.add_argument("--enrolled", type=int, metavar="N",
                       help="people enrolled; the rest are strangers (default: half of those with more than K photos)")
    ident.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    ident.add_argument("--heldout-only", action="store_true",
                       help="leave out the people the shipped Siamese head was trained on (a fair comparison)")
    for command in (lfw, ident):
        add_pipeline_arguments(command)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose the embeddings: weights, crop margin, mirror averaging, cache folder."""
    from facewatch.identity.pipeline import CROP_MARGIN

    parser.add_argument("--weights", choices=["casia-webface", "vggface2"],
                        help="FaceNet weights (default: config embedding.weights)")
    parser.add_argument("--margin", type=int, default=CROP_MARGIN,
                        help=f"crop margin in pixels of the 160 px crop (default {CROP_MARGIN}, the daemon's)")
    parser.add_argument("--mirror", action="store_true",
                        help="use the normalised mean of each face's and its mirror image's embeddings")
    parser.add_argument("--cache", type=Path,
                        help="folder for cached boxes and embeddings (default: eval/ in the user cache dir)")


class Progress:
    """One self-overwriting stderr line per stage, so a long embedding run shows it is alive."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Report `done` of `total` images through `stage`."""
        end = "\n" if done == total else ""
        print(f"\r  {stage}: {done}/{total} images, {time.monotonic() - self.started:.0f} s", end=end,
              file=sys.stderr, flush=True)


@dataclass(frozen=True)
class EvalPipeline:
    """The face pass an evaluation runs: detector, embedder, FaceNet weight set, and the settings that key caches."""

    detector: object
    embedder: object
    weights: str
    detector_id: str


def load_pipeline(args: argparse.Namespace, config: Config) -> EvalPipeline:
    """The config's face pass with --weights applied (networks from verified weights, as the daemon loads them)."""
    from facewatch.engine import choose_engine, load_face_pipeline

    if not 0 <= args.margin < 160:
        raise UserError(f"--margin must be in [0, 160), got {args.margin}")
    if args.weights:
        config = dataclasses.replace(config, embedding=dataclasses.replace(config.embedding, weights=args.weights))
    engine = choose_engine(config)
    pipeline, weights = load_face_pipeline(config, engine)
    return EvalPipeline(pipeline.detector, pipeline.embedder, weights, detector_id(config.face, engine))


def detector_id(face, engine: str) -> str:
    """The face detector settings and engine as text: part of the key of cached boxes (config `face` section)."""
    thresholds = ",".join(map(str, face.thresholds))
    return (f"mtcnn-{engine} min_face_size={face.min_face_size} thresholds={thresholds} "
            f"min_probability={face.min_probability}")


def embed_folder(args: argparse.Namespace, pipe: EvalPipeline, root: Path, keys: list[str]):
    """Embeddings of the images `keys` under `root` (cached in --cache or the user cache dir)."""
    from facewatch.evaluation.datasets import embed_dataset
    from facewatch.paths import cache_dir

    return embed_dataset(root, keys, pipe.detector, pipe.embedder, model_id=pipe.weights,
                         detector_id=pipe.detector_id, margin=args.margin,
                         cache_dir=args.cache or cache_dir() / "eval", progress=Progress())


def handle(args: argparse.Namespace) -> int:
    """Run the chosen evaluation and print its numbers."""
    from facewatch.evaluation.datasets import ProtocolError

    config = load_config(args.config)
    try:
        return _lfw(args, config) if args.what == "lfw" else _identify(args, config)
    except ProtocolError as exc:
        raise UserError(str(exc)) from exc


def _lfw(args: argparse.Namespace, config: Config) -> int:
    """LFW 10-fold verification with the pipeline's embeddings; prints the table line and writes the ROC."""
    from facewatch.evaluation.lfw import LFW_IMAGES, lfw_verification, read_pairs
    from facewatch.evaluation.metrics import plot_roc

    if not 0 < args.far < 1:
        raise UserError(f"--far must be in (0, 1), got {args.far}")
    pairs = read_pairs(args.data / "pairs.txt")
    print(f"LFW: {len(pairs.same)} pairs in {pairs.n_folds} folds, {len(pairs.images)} images")
    pipe = load_pipeline(args, config)
    weights = pipe.weights
    embeddings = embed_folder(args, pipe, args.data / LFW_IMAGES, pairs.images)
    result = lfw_verification(pairs, embeddings, mirror=args.mirror, metric=args.metric,
                              subtract_mean=args.subtract_mean, far=args.far)
    setting = (f"{weights}, margin {args.margin}, {'mirror-averaged' if args.mirror else 'no mirror'}, "
               f"{args.metric}{', mean subtracted' if args.subtract_mean else ''}")
    folds = result.folds
    sign = -1 if args.metric == "euclidean" else 1  # euclidean scores are minus the distance
    print(f"setting: {setting}")
    low, high = sorted((sign * folds.thresholds.min(), sign * folds.thresholds.max()))
    print(f"accuracy: {100 * folds.mean:.2f} ± {100 * folds.std:.2f} % ({pairs.n_folds}-fold; per fold: "
          f"{' '.join(f'{100 * a:.1f}' for a in folds.accuracies)})")
    print(f"threshold ({'distance' if sign < 0 else 'similarity'}): mean {sign * folds.thresholds.mean():.4f}, "
          f"range {low:.4f}..{high:.4f}")
    print(f"TAR at FAR={args.far:g}: {100 * result.tar:.2f} % (threshold {sign * result.far_threshold:.4f})")
    print(f"no face found: {len(result.no_face)} of {result.n_images} images (embedded from the median face box)")
    plot_roc({setting: result.roc}, args.roc, f"LFW 10-fold ROC: {100 * folds.mean:.2f} % accuracy")
    print(f"ROC: {args.roc}")
    return 0


def _identify(args: argparse.Namespace, config: Config) -> int:
    """Open-set identification with cosine and the Siamese head on the same split."""
    from facewatch.engine import load_matcher
    from facewatch.evaluation.identification import (
        identification_counts,
        identity_images,
        split_identities,
    )
    from facewatch.identity.matching import decide
    from facewatch.identity.siamese import HeadError

    all_keys, all_names = identity_images(args.data)
    pipe = load_pipeline(args, config)
    trained = _trained_people(pipe.weights, args.data, set(all_names))
    keep = [i for i, n in enumerate(all_names) if not (args.heldout_only and n in trained)]
    keys, names = [all_keys[i] for i in keep], [all_names[i] for i in keep]
    k = args.gallery_per_person
    eligible = sum(names.count(p) > k for p in set(names))
    try:
        split = split_identities(names, args.enrolled if args.enrolled is not None else max(1, eligible // 2),
                                 k, args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.heldout_only:
        print(f"left out {len(trained)} people the Siamese head was trained on")
    elif trained:
        print(f"note: the Siamese head was trained on {len(trained)} of these people (its record lists them), so "
              f"its row flatters it; compare on the others with --heldout-only")
    embeddings = embed_folder(args, pipe, args.data, all_keys)  # the whole folder: one cache for every split
    vectors = embeddings.vectors(args.mirror)[embeddings.rows(keys)]
    no_face = sorted(set(embeddings.no_face) & set(keys))
    gallery, probes = vectors[split.gallery], vectors[split.probes]
    gallery_names = [names[i] for i in split.gallery]
    print(f"{args.data}: {len(set(names))} people, {len(keys)} photos; enrolled {len(split.enrolled)} x {k} photos "
          f"(seed {args.seed}); probes: {sum(t is not None for t in split.truth)} of enrolled people, "
          f"{sum(t is None for t in split.truth)} of strangers")
    print(f"no face found: {len(no_face)} photo(s) (embedded from the median face box)"
          f"{': ' + ', '.join(no_face[:5]) + (' ...' if len(no_face) > 5 else '') if no_face else ''}")
    print(f"{'matcher':<26}{'correct name':>14}{'wrong name':>12}{'owner refused':>15}{'stranger accepted':>19}")
    for method in ("cosine", "siamese"):
        try:
            matcher = load_matcher(config, pipe.weights, method)
        except HeadError as exc:
            print(f"{method:<26}unavailable: {exc}")
            continue
        c = identification_counts(decide(matcher, probes, gallery, gallery_names), split.truth)
        label = f"{method} (threshold {matcher.threshold:.3f})"
        print(f"{label:<26}{_rate(c.correct, c.owners):>14}{_rate(c.wrong, c.owners):>12}"
              f"{_rate(c.owners_rejected, c.owners):>15}{_rate(c.strangers_accepted, c.strangers):>19}")
    return 0


def _trained_people(weights: str, folder: Path, people: set[str]) -> set[str]:
    """Those of `people` (in `folder`) that the shipped Siamese head was trained on, per its record."""
    import json

    from facewatch.identity.matching import siamese_files

    try:
        record = json.loads(siamese_files(weights)[1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    listed = record.get("split", {}).get("trained_people", {}).get(folder.name, [])
    return set(people) if listed == "*" else set(people) & set(listed)  # "*": every person of that folder


def _rate(count: int, total: int) -> str:
    """`count/total (pct %)`, or n/a when there is nothing to count."""
    return f"{count}/{total} {100 * count / total:.1f}%" if total else "n/a"
