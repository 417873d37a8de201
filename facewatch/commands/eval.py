"""`facewatch eval lfw|identify`: measured verification (LFW 10-fold) and open-set identification accuracy."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facewatch.cli import UserError
from facewatch.config import Config, load_config

if TYPE_CHECKING:
    from facewatch.detectors.base import FaceDetector
    from facewatch.identity.pipeline import FacePipeline


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
    ident = sub.add_parser("identify", help="open-set identification at the daemon's decision",
                           description="Enroll some people of a folder, probe with everyone's other photos, and "
                                       "decide exactly as the daemon does: per-person calibration against the "
                                       "shipped cohort, uncertain band, matching.threshold if set.")
    ident.add_argument("--data", type=Path, required=True, help="folder with one sub-folder of photos per person")
    ident.add_argument("--gallery-per-person", type=int, default=5, metavar="K",
                       help="photos enrolled per person (default 5, as --from-camera takes)")
    ident.add_argument("--enrolled", type=int, metavar="N",
                       help="people enrolled; the rest are strangers (default: half of those with more than K photos)")
    ident.add_argument("--seed", type=int, default=0, help="seed of the first random split (default 0)")
    ident.add_argument("--seeds", type=int, default=1, help="splits to run, seeds SEED, SEED+1, ... (default 1)")
    ident.add_argument("--min-photos", type=int, default=1, metavar="N",
                       help="leave out people with fewer than N photos (e.g. 4 for LFW's people with >= 4 photos)")
    ident.add_argument("--enroll-prefix", metavar="TEXT",
                       help="enroll only from photos whose file name starts with TEXT and probe enrolled people "
                            "only with the others (e.g. one camera session vs another)")
    light = ident.add_mutually_exclusive_group()
    light.add_argument("--gray", action="store_true", help="convert every photo to grey first (an IR or dim webcam)")
    light.add_argument("--dim", action="store_true", help="darken every photo (gamma 2.2, half the light, "
                                                          "sensor noise) first")
    ident.add_argument("--json", action="store_true", help="print one JSON object of counts per run")
    add_pipeline_arguments(lfw)
    # identify measures the daemon's own decision, so its crops are the daemon's (the cohort's margin too).
    add_pipeline_arguments(ident, crops=False)


def _crop_margin() -> int:
    """The daemon's crop margin."""
    from facewatch.identity.pipeline import CROP_MARGIN

    return CROP_MARGIN


def add_pipeline_arguments(parser: argparse.ArgumentParser, crops: bool = True) -> None:
    """Options that choose the embeddings: weights, cache folder and, with `crops`, crop margin and mirroring."""
    parser.add_argument("--weights", choices=["casia-webface", "vggface2"],
                        help="FaceNet weights (default: config embedding.weights)")
    if crops:
        parser.add_argument("--margin", type=int, default=_crop_margin(),
                            help=f"crop margin in pixels of the 160 px crop (default {_crop_margin()}, the daemon's)")
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

    detector: FaceDetector
    embedder: object
    weights: str
    detector_id: str
    pipeline: FacePipeline  # the daemon's FacePipeline: its embed_crops is what every face pass embeds with


def load_pipeline(args: argparse.Namespace, config: Config) -> EvalPipeline:
    """The config's face pass with --weights applied (networks from verified weights, as the daemon loads them)."""
    from facewatch.engine import choose_engine, load_face_pipeline

    margin = getattr(args, "margin", _crop_margin())
    if not 0 <= margin < 160:
        raise UserError(f"--margin must be in [0, 160), got {margin}")
    if args.weights:
        config = dataclasses.replace(config, embedding=dataclasses.replace(config.embedding, weights=args.weights))
    engine = choose_engine(config)
    pipeline, weights = load_face_pipeline(config, engine)
    return EvalPipeline(pipeline.detector, pipeline.embedder, weights, detector_id(config.face, engine), pipeline)


def detector_id(face, engine: str) -> str:
    """The face detector settings and engine as text: part of the key of cached boxes (config `face` section)."""
    thresholds = ",".join(map(str, face.thresholds))
    return (f"mtcnn-{engine} min_face_size={face.min_face_size} thresholds={thresholds} "
            f"min_probability={face.min_probability}")


def embed_folder(args: argparse.Namespace, pipe: EvalPipeline, root: Path, keys: list[str], variant: str = "colour",
                 flips: bool = True):
    """Embeddings of the images `keys` under `root` (cached in --cache or the user cache dir)."""
    from types import SimpleNamespace

    from facewatch.engine import gallery_model_id
    from facewatch.evaluation.datasets import embed_dataset
    from facewatch.paths import cache_dir

    # Crops go through the daemon's own embed_crops, so any pre-processing it does is measured too.
    embedder = SimpleNamespace(embed=pipe.pipeline.embed_crops)
    return embed_dataset(root, keys, pipe.detector, embedder, model_id=gallery_model_id(pipe.weights),
                         detector_id=pipe.detector_id, margin=getattr(args, "margin", _crop_margin()),
                         cache_dir=args.cache or cache_dir() / "eval", progress=Progress(), variant=variant,
                         flips=flips)


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
    if importlib.util.find_spec("matplotlib") is None:  # the light install has no plotting library
        print("ROC: not plotted (matplotlib is not installed: pip install matplotlib)")
        return 0
    plot_roc({setting: result.roc}, args.roc, f"LFW 10-fold ROC: {100 * folds.mean:.2f} % accuracy")
    print(f"ROC: {args.roc}")
    return 0


def _identify(args: argparse.Namespace, config: Config) -> int:
    """Open-set identification over seeded splits, each person calibrated and judged as the daemon does."""
    import json

    from facewatch.engine import gallery_model_id, load_matcher
    from facewatch.evaluation.identification import (
        after_second_look,
        eligible_people,
        identification_counts,
        identity_images,
        second_looks,
        split_identities,
    )
    from facewatch.identity.calibration import calibrate
    from facewatch.identity.cohort import cohort_cache_path, cohort_embeddings
    from facewatch.identity.gallery import Gallery
    from facewatch.identity.matching import decide

    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    if args.min_photos < 1:
        raise UserError(f"--min-photos must be at least 1, got {args.min_photos}")
    keys, names = identity_images(args.data, args.min_photos)
    k = args.gallery_per_person
    enroll_only = None
    if args.enroll_prefix:
        enroll_only = [Path(key).name.startswith(args.enroll_prefix) for key in keys]
    variant = "gray" if args.gray else "dim" if args.dim else "colour"
    if args.enrolled is not None and args.enrolled > len(eligible_people(names, k, None, enroll_only)):
        try:  # bad input fails before minutes of embedding
            split_identities(names, args.enrolled, k, enroll_only=enroll_only)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
    pipe = load_pipeline(args, config)
    embeddings = embed_folder(args, pipe, args.data, keys, variant, flips=False)  # the daemon does not mirror
    vectors, found = embeddings.vectors()[embeddings.rows(keys)], embeddings.found[embeddings.rows(keys)]
    embedding_id = gallery_model_id(pipe.weights)
    cohort = cohort_embeddings(pipe.pipeline.embed_crops, embedding_id, cohort_cache_path(embedding_id))
    matcher = load_matcher(config, pipe.weights)
    if not args.json:
        print(f"{args.data} ({variant}): {len(set(names))} people, {len(keys)} photos, no face found in "
              f"{int((~found).sum())}; {k} photos enrolled per person, {args.seeds} seed(s) from {args.seed}")
    total = None
    for seed in range(args.seed, args.seed + args.seeds):
        eligible = len(eligible_people(names, k, found, enroll_only))
        try:
            split = split_identities(names, args.enrolled if args.enrolled is not None else max(1, eligible // 2),
                                     k, seed, usable=found, enroll_only=enroll_only)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        gallery = Gallery(names=[names[i] for i in split.gallery], embeddings=vectors[split.gallery])
        gallery.points = {n: c.point for n, c in calibrate(gallery, cohort, matcher).items()}
        decided = decide(matcher, vectors[split.probes], gallery.embeddings, gallery.names, gallery.points, cohort)
        matches = [m if found[i] else None for m, i in zip(decided, split.probes)]
        counts = identification_counts(matches, split.truth)
        final = identification_counts(after_second_look(matches, second_looks(split, names, found, seed)),
                                      split.truth)
        if args.json:
            print(json.dumps({**counts.as_json(), "after_second_look": final.as_json()}))
        total = (counts, final) if total is None else (total[0] + counts, total[1] + final)
    if not args.json:
        assert total is not None  # --seeds is at least 1
        t, f = total
        print(f"owners:    {_rate(t.named, t.owners)} named, {_rate(t.misnamed, t.owners)} misnamed, "
              f"{_rate(t.owners_uncertain, t.owners)} uncertain, {_rate(t.owners_unknown, t.owners)} unknown")
        print(f"strangers: {_rate(t.accepted, t.strangers)} accepted, "
              f"{_rate(t.strangers_uncertain, t.strangers)} uncertain, "
              f"{_rate(t.strangers_unknown, t.strangers)} unknown; no face: {t.no_face} probe(s)")
        print(f"after the second look at the uncertain (another photo of the same person; uncertain twice = unknown):"
              f"\n  owners:    {_rate(f.named, f.owners)} named, {_rate(f.misnamed, f.owners)} misnamed, "
              f"{_rate(f.owners_unknown, f.owners)} unknown\n  strangers: {_rate(f.accepted, f.strangers)} accepted, "
              f"{_rate(f.strangers_unknown, f.strangers)} unknown")
    return 0


def _rate(count: int, total: int) -> str:
    """`count/total (pct %)`, or n/a when there is nothing to count."""
    return f"{count}/{total} ({100 * count / total:.1f} %)" if total else "n/a"
