"""Privacy switches for the third-party libraries facewatch runs, in one place, set before any of them is imported.

- ONNX Runtime (>= 1.29 on Linux and macOS) queues telemetry for Microsoft's collector and writes a device id under
  ~/.cache/Microsoft at its first import; ORT_DISABLE_TELEMETRY=1 turns all of it off.
- ultralytics resolves DNS names at import to decide whether it is online and, when it is, sends usage events to
  Google Analytics after every predict, checks PyPI for updates and pip-installs missing packages. YOLO_OFFLINE=1
  skips the probe and counts as offline (no events, no update check, no install); YOLO_AUTOINSTALL=0 forbids runtime
  installs outright. Unlike `settings.update(sync=False)` neither rewrites ~/.config/Ultralytics/settings.json.
  Model downloads (a .pt named without a folder) still happen, only when the user names such a model.
Both libraries read these once, at import, so `facewatch/__init__.py` applies them when the package is imported.
"""

from __future__ import annotations

import os

FORCED = {"ORT_DISABLE_TELEMETRY": "1", "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0"}
DEFAULTS = {"YOLO_VERBOSE": "False"}  # ultralytics' per-load info lines stay out of our log unless the user asks


def apply() -> None:
    """Set the switches in this process's environment (inherited by any child process it starts)."""
    os.environ.update(FORCED)
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
