"""facewatch: a background webcam guard that locks the screen when a stranger sits at the keyboard."""

__version__ = "0.1.0"
