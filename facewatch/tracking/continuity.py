"""Is this still the person the face pass named? A per-frame appearance check with no network, and a scene-cut test.

Box overlap says where a person is, not who: a stranger who sits down in the owner's place keeps the box. This
check is what stops the name riding along. Rules, applied by the Tracker on every processed frame:
1. Signature: the hue-saturation histogram (HSV, 16 x 8 bins) of the track's head and upper body, the top square
   of its person box (side = box width, clipped to the box). A colour distribution, not a layout: it holds while
   the person talks, turns, looks down or leans and while the box jitters; it moves when other hair, skin and
   clothes fill the box. Measured against a grey thumbnail, a gradient descriptor and a Lab colour layout on
   real webcam footage and real-people swaps (README "Scenarios"), it alone kept both error rates low.
2. The signature is taken when a face pass names the track and kept until a face pass names it again: each
   frame is compared with the person the pass saw, never with the frame before, so a drift cannot walk a
   name onto someone else.
3. Appearance: a Bhattacharyya distance above `appearance` between the region now and the signature fails
   the track ("appearance_changed").
4. Scene cut: the same histogram of the whole frame against the previous processed frame's; a distance above
   `scene_cut` fails every named track ("scene_cut").
5. Regions are read with a pixel stride of at most SIDE pixels a side before summarising, so the cost stays a
   fraction of a millisecond per track whatever the frame size.
"""

from __future__ import annotations

import cv2
import numpy as np

BINS = (16, 8)  # hue, saturation: hue carries skin, hair and clothes; saturation separates greys from colours
SIDE = 48  # rule 5: a region is summarised from at most this many pixels a side
APPEARANCE_CHANGED = "appearance_changed"
SCENE_CUT = "scene_cut"


def head_region(box: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Rule 1: the top square of a person box (side = its width, clipped to the box and the frame), as ints."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    y2 = min(y2, y1 + (x2 - x1))
    height, width = shape[:2]
    x1, y1 = int(np.clip(x1, 0, width - 1)), int(np.clip(y1, 0, height - 1))
    return x1, y1, int(np.clip(x2, x1 + 1, width)), int(np.clip(y2, y1 + 1, height))


def colour_signature(image_bgr: np.ndarray) -> np.ndarray:
    """Rule 1: the normalised hue-saturation histogram of a BGR image, read with a stride (rule 5)."""
    step = max(1, max(image_bgr.shape[:2]) // SIDE)
    hsv = cv2.cvtColor(np.ascontiguousarray(image_bgr[::step, ::step]), cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(BINS), [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two signatures: 0 for the same colours, 1 for colours that do not overlap."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


class ContinuityCheck:
    """Signs named tracks and says, frame by frame, when a track or the whole scene no longer matches (rules 3-4)."""

    def __init__(self, appearance: float, scene_cut: float) -> None:
        """appearance, scene_cut: the distances (0-1) above which a track, or the scene, counts as changed."""
        for key, value in (("appearance", appearance), ("scene_cut", scene_cut)):
            if not 0 < value <= 1:
                raise ValueError(f"continuity.{key} must be in (0, 1], got {value}")
        self.appearance, self.scene_cut = appearance, scene_cut
        self._scene: np.ndarray | None = None

    def sign(self, frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Rule 2: the signature of the person in `box`, taken when a face pass names them."""
        x1, y1, x2, y2 = head_region(box, frame_bgr.shape)
        return colour_signature(frame_bgr[y1:y2, x1:x2])

    def changed(self, frame_bgr: np.ndarray, box: np.ndarray, signature: np.ndarray) -> bool:
        """Rule 3: True when the person in `box` no longer looks like `signature`."""
        return distance(self.sign(frame_bgr, box), signature) > self.appearance

    def cut(self, frame_bgr: np.ndarray) -> bool:
        """Rule 4: True when this frame's colours differ from the previous processed frame's (first frame: no)."""
        scene, self._scene = self._scene, colour_signature(frame_bgr)
        return scene is not None and distance(scene, self._scene) > self.scene_cut
