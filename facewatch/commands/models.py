"""`facewatch models list|verify|build`: where each model file is, whether its hash is right, and conversions."""

from __future__ import annotations

import argparse

from facewatch.config import load_config, model_dirs
from facewatch.weights.registry import casia_weights, status, sweep_temp, writable_dir
from facewatch.weights.variants import read_record


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """`models` takes one action."""
    parser.add_argument("action", choices=["list", "verify", "build"],
                        help="list: show files; verify: check hashes (exit 1 on a bad one); build: convert weights")


def _fetch_vggface2() -> str:
    """Download facenet-pytorch's vggface2 weights into the torch cache (the one step that needs internet)."""
    from facewatch.engine import vggface2_file
    from facewatch.identity.embedding import TorchEmbedder

    if vggface2_file() is not None:
        return "already downloaded"
    try:
        TorchEmbedder.vggface2()
    except RuntimeError as exc:
        return f"not available ({str(exc).split(';')[0]}); casia-webface is used"
    return "downloaded"


def _embed_cohort(config) -> str:
    """Embed the shipped cohort with the FaceNet the daemon will run, so its first start calibrates at once."""
    from facewatch.engine import choose_engine, gallery_model_id, load_face_pipeline
    from facewatch.identity.cohort import cohort_cache_path, cohort_embeddings

    faces, weights = load_face_pipeline(config, choose_engine(config))
    embedding_id = gallery_model_id(weights)
    count = len(cohort_embeddings(faces.embed_crops, embedding_id, cohort_cache_path(embedding_id)))
    return f"{count} faces, {weights} ({cohort_cache_path(embedding_id)})"


def handle(args: argparse.Namespace) -> int:
    """Print the model table, or build what facewatch converts itself."""
    config = load_config(args.config)
    dirs = model_dirs(config)
    print("model dirs (searched in order; built files go into the first):")
    for d in dirs:
        print(f"  {d}")
    if args.action == "build":
        for stale in sweep_temp(writable_dir(dirs)):
            print(f"removed {stale} (left by an interrupted build)")
        from facewatch.build.onnx_models import TORCH_EXTRA, build_onnx, has_torch
        from facewatch.engine import vggface2_file

        if has_torch():  # the torch engine's own files
            print(f"FaceNet casia-webface (torch engine): {casia_weights(dirs)}")
            print(f"FaceNet vggface2: {_fetch_vggface2()}")
        else:
            print(f"torch engine files: skipped (the torch extra is not installed: {TORCH_EXTRA})")
        print("onnx engine: timing each network's variants on this CPU (a few seconds each)")
        build_onnx(dirs, config.person.model, config.person.imgsz, vggface2_file(), say=lambda line: print(f"  {line}"))
        print(f"impostor cohort embedded for calibration: {_embed_cohort(config)}")
    bad = 0
    for filename, state, detail in status(dirs):
        print(f"{state:8} {filename:32} {detail}")
        bad += state == "corrupt"
    choices = read_record(dirs[0]) if dirs else {}
    print("variants chosen for this CPU by `facewatch models build`:" if choices else
          "variants: none recorded for this ONNX Runtime (run `facewatch models build`)")
    for choice in choices.values():
        print(f"  {choice.summary()}")
    return 1 if args.action == "verify" and bad else 0
