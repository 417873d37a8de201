"""`facewatch train-siamese`: train the Siamese head on LFW (+ AT&T faces) by identity and measure it against cosine.

LFW's ten folds are identity-disjoint: the head is cross-validated like the protocol (ten heads, each trained on
nine folds and tested on the tenth), and some AT&T people are held out of all training. The shipped head is then
trained on every training identity; its weights (.npz) and a JSON record of data, split, settings and metrics
are written side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from facewatch import __version__
from facewatch.cli import UserError
from facewatch.commands.eval import add_pipeline_arguments, embed_folder, load_pipeline
from facewatch.config import load_config
from facewatch.identity.matching import COSINE_THRESHOLDS, DATA_DIR, siamese_files


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Data folders, split, training settings and where to write the head."""
    from facewatch.identity.siamese import TrainSettings

    defaults = TrainSettings()
    parser.add_argument("--lfw", type=Path, required=True, help="LFW folder holding pairs.txt and lfw-deepfunneled/")
    parser.add_argument("--att", type=Path,
                        help="AT&T faces folder (s1..s40): some people trained on, the rest held out")
    parser.add_argument("--att-heldout", type=int, default=10, metavar="N",
                        help="AT&T people kept out of training, for the held-out check (default 10)")
    parser.add_argument("--out", type=Path, default=DATA_DIR,
                        help=f"folder for siamese_<weights>.npz/.json (default: the package's {DATA_DIR})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"seed of split and training "
                                                                        f"(default {defaults.seed})")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"default {defaults.epochs}")
    parser.add_argument("--hidden", type=int, default=defaults.hidden, help=f"hidden units (default {defaults.hidden})")
    add_pipeline_arguments(parser)


def image_folds(pairs) -> dict[str, int]:
    """The LFW fold of every image of the pairs (folds are identity-disjoint, so each image has one)."""
    return {key: int(f) for keys in (pairs.first, pairs.second) for key, f in zip(keys, pairs.fold)}


def handle(args: argparse.Namespace) -> int:
    """Embed, cross-validate on LFW, check on held-out AT&T people, train the shipped head, write it and its record."""
    from facewatch.evaluation.datasets import ProtocolError
    from facewatch.evaluation.lfw import LFW_IMAGES, read_pairs
    from facewatch.identity.siamese import TrainSettings, train_head

    if args.epochs < 1 or args.hidden < 1:
        raise UserError("--epochs and --hidden must be at least 1")
    config = load_config(args.config)
    settings = TrainSettings(hidden=args.hidden, epochs=args.epochs, seed=args.seed)
    try:
        pairs = read_pairs(args.lfw / "pairs.txt")
        pipe = load_pipeline(args, config)
        lfw = embed_folder(args, pipe, args.lfw / LFW_IMAGES, pairs.images)
        att = _att_split(args, pipe) if args.att else None
    except ProtocolError as exc:
        raise UserError(str(exc)) from exc
    lfw_vectors = lfw.vectors(args.mirror)
    lfw_names = [key.split("/")[0] for key in lfw.keys]
    extra_vectors, extra_names = (att["train_vectors"], att["train_names"]) if att else (np.zeros((0, 512)), [])

    def train(rows: np.ndarray):
        """A head on the LFW images `rows` plus the AT&T training people."""
        return train_head(np.concatenate([lfw_vectors[rows], extra_vectors]),
                          [*np.array(lfw_names)[rows], *extra_names], settings)

    metrics = {"lfw_10fold": _cross_validate(pairs, lfw, args.mirror, train)}
    threshold = metrics["lfw_10fold"]["siamese"]["threshold_mean"]
    print("  shipped head: training on all LFW folds" + (" and the AT&T training people" if att else ""), flush=True)
    head = train(np.ones(len(lfw_names), bool))
    if att:
        metrics["att_heldout"] = _att_metrics(head, threshold, att, COSINE_THRESHOLDS[pipe.weights])
    record = {
        "what": "Siamese head over FaceNet embeddings: |a-b| and a*b -> Linear -> ReLU -> Linear -> sigmoid",
        "facewatch": __version__,
        "weights": pipe.weights,
        "embedding": {"margin": args.margin, "mirror": args.mirror, "face": dataclasses.asdict(config.face)},
        "data": {"lfw": f"{args.lfw.name}/pairs.txt: {len(lfw.keys)} images, {len(set(lfw_names))} people",
                 "att": f"{args.att.name}: {att['people']} people" if att else None},
        "split": {
            "lfw": "10 identity-disjoint folds of pairs.txt; cross-validation heads train on 9, test on 1; "
                   "the shipped head trains on all 10",
            "att_train": att["train_people"] if att else [],
            "att_heldout": att["heldout_people"] if att else [],
            # Folders whose people the shipped head has seen ("*": all of them), so `eval identify` can say so.
            "trained_people": {LFW_IMAGES: "*", **({args.att.name: att["train_people"]} if att else {})},
        },
        "training": dataclasses.asdict(settings),
        "threshold": threshold,
        "threshold_source": "mean of the 10 LFW cross-validation thresholds",
        "metrics": metrics,
    }
    head_file, record_file = (args.out / p.name for p in siamese_files(pipe.weights))
    args.out.mkdir(parents=True, exist_ok=True)
    head_file.write_bytes(head.to_bytes())
    record_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    _print_summary(metrics)
    print(f"wrote {head_file} and {record_file}")
    return 0


def _cross_validate(pairs, lfw, mirror: bool, train) -> dict:
    """LFW 10-fold for the head (one head per test fold, trained on the other nine) and for cosine, side by side."""
    from facewatch.evaluation.lfw import lfw_verification

    folds = image_folds(pairs)
    image_fold = np.array([folds[key] for key in lfw.keys])

    def per_fold_heads(first: np.ndarray, second: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """Row k: every pair scored by a head that never saw fold k's people."""
        rows = []
        for k in range(pairs.n_folds):
            print(f"  LFW fold {k + 1}/{pairs.n_folds}: training on the other folds", flush=True)
            rows.append(train(image_fold != k).score_pairs(first, second))
        return np.stack(rows)

    out = {}
    for name, scorer in (("siamese", per_fold_heads), ("cosine", None)):
        result = lfw_verification(pairs, lfw, mirror=mirror, scorer=scorer)
        out[name] = {
            "accuracy_mean": round(result.folds.mean, 6),
            "accuracy_std": round(result.folds.std, 6),
            "fold_accuracies": [round(float(a), 6) for a in result.folds.accuracies],
            "threshold_mean": round(float(result.folds.thresholds.mean()), 6),
            "tar_at_far_1e-3": round(result.tar, 6),
        }
    return out


def _att_split(args: argparse.Namespace, pipe) -> dict:
    """AT&T embeddings split by person (seeded): training people and held-out people, never both."""
    from facewatch.evaluation.identification import identity_images

    names: list[str] | np.ndarray  # the names, then the same as an array
    keys, names = identity_images(args.att)
    people = sorted(set(names))
    if not 0 < args.att_heldout < len(people):
        raise UserError(f"--att-heldout must be between 1 and {len(people) - 1}, got {args.att_heldout}")
    heldout = sorted(np.random.default_rng(args.seed).choice(people, args.att_heldout, replace=False).tolist())
    emb = embed_folder(args, pipe, args.att, keys)
    vectors = emb.vectors(args.mirror)[emb.rows(keys)]
    names = np.array(names)
    test = np.isin(names, heldout)
    return {
        "people": len(people),
        "train_people": [p for p in people if p not in heldout],
        "heldout_people": heldout,
        "train_vectors": vectors[~test],
        "train_names": names[~test].tolist(),
        "heldout_vectors": vectors[test],
        "heldout_names": names[test].tolist(),
        "no_face": len(emb.no_face),
    }


def _att_metrics(head, threshold: float, att: dict, cosine_threshold: float) -> dict:
    """Balanced verification accuracy on every pair of the held-out AT&T people, at the deployed thresholds."""
    from facewatch.evaluation.metrics import all_pairs, balanced_accuracy, pair_scores

    vectors = att["heldout_vectors"]
    i, j, same = all_pairs(att["heldout_names"])
    siamese = head.score_pairs(vectors[i], vectors[j])
    cosine = pair_scores(vectors[i], vectors[j])
    return {
        "pairs": int(len(same)),
        "same_pairs": int(same.sum()),
        "no_face": att["no_face"],
        "siamese": {"balanced_accuracy": round(balanced_accuracy(siamese, same, threshold), 6),
                    "threshold": round(threshold, 6)},
        "cosine": {"balanced_accuracy": round(balanced_accuracy(cosine, same, cosine_threshold), 6),
                   "threshold": cosine_threshold},
    }


def _print_summary(metrics: dict) -> None:
    """Cosine and Siamese side by side."""
    for name, r in metrics["lfw_10fold"].items():
        print(f"LFW 10-fold, {name}: {100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} % "
              f"(threshold {r['threshold_mean']:.3f}, TAR at FAR=1e-3 {100 * r['tar_at_far_1e-3']:.1f} %)")
    if "att_heldout" in metrics:
        att = metrics["att_heldout"]
        print(f"AT&T held-out people, {att['pairs']} pairs ({att['same_pairs']} same), balanced accuracy: siamese "
              f"{100 * att['siamese']['balanced_accuracy']:.2f} % | cosine "
              f"{100 * att['cosine']['balanced_accuracy']:.2f} % (threshold {att['cosine']['threshold']})")
