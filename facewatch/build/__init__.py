"""Build steps run once by `facewatch models build`: conversions and exports. The only package (besides the torch backends) that imports torch at import time."""
