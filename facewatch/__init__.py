"""facewatch: a background webcam guard that locks the screen when a stranger sits at the keyboard."""

from facewatch import offline

offline.apply()  # before any facewatch module can import onnxruntime or ultralytics

__version__ = "0.1.0"
APP = "facewatch"  # the one name: user dirs, notifications, tray, autostart entries
