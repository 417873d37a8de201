"""facewatch: a background webcam guard that locks the screen when a stranger sits at the keyboard."""

import os

from facewatch import offline

offline.apply()  # before any facewatch module can import onnxruntime or ultralytics

# Bounded decoding (facewatch/imageio.py): OpenCV reads its pixel limit for every decoder when cv2 is imported, so
# it is set here too, before any facewatch module imports cv2. The limit is facewatch's, not the caller's.
MAX_IMAGE_PIXELS = 40_000_000
os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(MAX_IMAGE_PIXELS)

__version__ = "0.1.0"
APP = "facewatch"  # the one name: user dirs, notifications, tray, autostart entries
