"""facewatch: a background webcam guard that locks the screen when a stranger sits at the keyboard."""

import os

# Privacy: onnxruntime >= 1.29 (Linux, macOS) queues telemetry for Microsoft's collector and writes a device id
# under ~/.cache/Microsoft at its first import. ORT_DISABLE_TELEMETRY=1 turns all of it off, but only when set
# before onnxruntime is imported, so it is set here, on import of the package, before any facewatch module runs.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
APP = "facewatch"  # the one name: user dirs, notifications, tray, autostart entries
