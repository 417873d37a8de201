"""`facewatch enroll NAME --images PATH... | --from-camera [--count N]`: add a person's photos to the gallery."""

from __future__ import annotations

import argparse

from facewatch.cli import UserError
from facewatch.config import load_config
from facewatch.identity.gallery import person_dir


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """The person's name and where the photos come from."""
    parser.add_argument("name", help="who the photos show (a plain folder name, e.g. alice)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", nargs="+", metavar="PATH", help="photo files, one clear face each")
    src.add_argument("--from-camera", action="store_true", help="guided capture from the camera")
    parser.add_argument("--count", type=int, default=5, help="shots to take with --from-camera (default 5)")
    parser.add_argument("--camera", type=int, help="camera index for --from-camera (default: config camera.source)")


def handle(args: argparse.Namespace) -> int:
    """Enroll, then print each photo kept or refused; exit 1 when nothing was added."""
    from facewatch.engine import choose_engine, load_face_detector
    from facewatch.identity.enroll import enroll_images

    config = load_config(args.config)
    try:
        folder = person_dir(config.gallery_dir, args.name)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if args.count < 1:
        raise UserError(f"--count must be at least 1, got {args.count}")
    detector = load_face_detector(config, choose_engine(config))
    if args.images:
        results = enroll_images(folder, args.images, detector)
    else:
        results = _from_camera(folder, args.camera if args.camera is not None else config.camera.source,
                               detector, args.count)
    for r in results:
        print(f"  added {r.path}" if r.path else f"  skipped {r.source}: {r.reason}")
    added = sum(r.path is not None for r in results)
    print(f"{added} photo(s) enrolled for {args.name} in {folder}")
    return 0 if added else 1


def _from_camera(folder, source, detector, count: int):
    """Run guided capture over live frames at a few fps, releasing the camera afterwards."""
    from facewatch.capture import (
        FrameSource,
        open_error_hint,
        probe_camera,
        source_kind,
    )
    from facewatch.identity.enroll import enroll_from_frames

    if source_kind(source) == "camera" and not probe_camera(int(source)):
        raise UserError(open_error_hint(source))
    with FrameSource(source, target_fps=4.0) as frames:
        def stream():
            while (packet := frames.read(1.0)) is not None:
                if packet.frame is not None:
                    yield packet.frame
        return enroll_from_frames(folder, stream(), detector, count)
