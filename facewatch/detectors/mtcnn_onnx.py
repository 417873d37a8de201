"""MTCNN's three-stage cascade in numpy, for the ONNX Runtime engine: the same steps, in the same order and
float32 arithmetic, as facenet-pytorch's `detect_face`, so both engines find the same faces.

The networks are passed in as plain callables (NCHW float32 array in, numpy arrays out), so this module
imports neither torch nor onnxruntime; OpenCV supplies the summed-area table behind the area resampling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from facewatch.weights.heap import reusing_freed_memory

# A network: NCHW float32 input -> its outputs (P-/R-Net: box regression, face probability;
# O-Net: box regression, landmarks, face probability).
Net = Callable[[np.ndarray], Sequence[np.ndarray]]

PYRAMID_FACTOR = 0.709  # each pyramid level is this much smaller than the previous one
PNET_STRIDE = 2  # P-Net's output cells are 2 input pixels apart ...
PNET_CELL = 12  # ... and each looks at a 12x12 window
RNET_SIZE = 24
ONET_SIZE = 48
# R-/O-Net crops are run this many at a time: bounds the activation memory (an O-Net crop needs ~0.4 MB).
CROP_BATCH = 32


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float = PYRAMID_FACTOR) -> list[float]:
    """Scales of the image pyramid: the first maps min_face_size to P-Net's 12 px, the last keeps >= 12 px."""
    scale = 12.0 / min_face_size
    shortest = min(height, width) * scale
    scales = []
    while shortest >= 12:
        scales.append(scale)
        scale *= factor
        shortest *= factor
    return scales


def integral_image(image: np.ndarray) -> np.ndarray:
    """Summed-area table (H+1)x(W+1)x3 of a uint8 image, so every box sum is exact and costs four lookups.

    int32 while the whole image's sum fits, float64 (exact for integers below 2**53) beyond ~8 megapixels.
    """
    height, width = image.shape[:2]
    return cv2.integral(image, sdepth=cv2.CV_32S if 255 * height * width < 2**31 else cv2.CV_64F)


def _bins(start: np.ndarray, stop: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """First and end (exclusive) source index of each of `size` output pixels over [start, stop), per region.

    The bins of torch's area interpolation (adaptive average pooling): floor(i*n/size) to ceil((i+1)*n/size).
    """
    length = (stop - start)[:, None]
    i = np.arange(size)
    first = start[:, None] + i * length // size
    end = start[:, None] - (-(i + 1) * length // size)
    return first, end


def resample(table: np.ndarray, regions: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-resample image regions (x1, y1, x2, y2 integer, end exclusive) to NCHW height x width, normalised.

    Each output pixel is the mean of its source bin (torch's mode="area"), then (x - 127.5) / 128 as MTCNN expects.
    """
    rows0, rows1 = _bins(regions[:, 1], regions[:, 3], height)
    cols0, cols1 = _bins(regions[:, 0], regions[:, 2], width)
    r0, r1 = rows0[:, :, None], rows1[:, :, None]
    c0, c1 = cols0[:, None, :], cols1[:, None, :]
    sums = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]  # (n, height, width, 3)
    return _normalised(sums, (r1 - r0) * (c1 - c0))


def resample_whole(table: np.ndarray, height: int, width: int) -> np.ndarray:
    """The whole image area-resampled to 1x3xheight x width: `resample` of its full region, the same values.

    One axis at a time (row bands of the table, then columns of the bands): on a 1080p frame's largest level 11 ms
    instead of the 17 ms of `resample`'s four 2-D lookups per output pixel; the integer sums are identical.
    """
    rows0, rows1 = (edge[0] for edge in _bins(np.array([0]), np.array([table.shape[0] - 1]), height))
    cols0, cols1 = (edge[0] for edge in _bins(np.array([0]), np.array([table.shape[1] - 1]), width))
    bands = table[rows1] - table[rows0]  # (height, W+1, 3): each band's sums over columns [0, x)
    sums = bands[:, cols1] - bands[:, cols0]  # (height, width, 3)
    return _normalised(sums[None], ((rows1 - rows0)[:, None] * (cols1 - cols0)[None, :])[None])


def _normalised(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """NCHW float32 means of (n, height, width, 3) box sums over (n, height, width) pixel counts, as MTCNN expects."""
    # In place and in float32, which halves the bytes a 1080p pyramid touches. For bins under 256x256 pixels the sums
    # are integers below 2**24, exact in float32, and a float32 quotient is the float64 one rounded to float32.
    means = sums.astype(np.float32)
    means /= counts[..., None].astype(np.float32)
    means -= np.float32(127.5)
    means *= np.float32(0.0078125)
    return np.ascontiguousarray(means.transpose(0, 3, 1, 2))


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, over_smaller: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first.

    A box is dropped when its overlap with a kept, higher-scoring box exceeds `threshold`. The overlap is
    IoU with continuous areas (as torchvision's nms, MTCNN stages 1-2), or with over_smaller the
    intersection over the smaller box with pixel-inclusive (+1) sizes (facenet-pytorch's final "Min" NMS).
    """
    plus = np.float32(1.0 if over_smaller else 0.0)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + plus) * (y2 - y1 + plus)
    # Equal scores (O-Net saturates at exactly 1.0) are visited in the order each reference visits them: the
    # first index first (torchvision), or the order of numpy's default argsort reversed (facenet-pytorch's Min NMS).
    order = np.argsort(scores)[::-1] if over_smaller else np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter_w = np.maximum(np.float32(0), np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + plus)
        inter_h = np.maximum(np.float32(0), np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + plus)
        inter = inter_w * inter_h
        if over_smaller:
            overlap = inter / np.minimum(areas[best], areas[rest])
        else:
            overlap = inter / (areas[best] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box (x1, y1, x2, y2) to a square around its centre, side = its longer side."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    x1 = boxes[:, 0] + width * np.float32(0.5) - side * np.float32(0.5)
    y1 = boxes[:, 1] + height * np.float32(0.5) - side * np.float32(0.5)
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def _refine(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply R-/O-Net box regression: each edge moves by its offset times the pixel-inclusive box size."""
    width = boxes[:, 2] - boxes[:, 0] + np.float32(1)
    height = boxes[:, 3] - boxes[:, 1] + np.float32(1)
    return boxes + offsets * np.stack([width, height, width, height], axis=1)


def _crop_regions(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer crop regions of the boxes clipped to the image (no padding), and which boxes keep a non-empty one.

    Coordinates are truncated toward zero and the region runs from x1-1 to x2 (facenet-pytorch's `pad`).
    """
    corners = np.trunc(boxes).astype(np.int64)
    x1 = np.maximum(corners[:, 0], 1) - 1
    y1 = np.maximum(corners[:, 1], 1) - 1
    x2 = np.minimum(corners[:, 2], width)
    y2 = np.minimum(corners[:, 3], height)
    regions = np.stack([x1, y1, x2, y2], axis=1)
    return regions, (x2 > x1) & (y2 > y1)


def _run_batched(net: Net, crops: np.ndarray) -> list[np.ndarray]:
    """Run a crop network CROP_BATCH crops at a time and join its outputs."""
    parts = [net(crops[i : i + CROP_BATCH]) for i in range(0, len(crops), CROP_BATCH)]
    return [np.concatenate(outputs) for outputs in zip(*parts)]


def _pnet_candidates(
    table: np.ndarray, height: int, width: int, pnet: Net, scale: float, threshold: float
) -> np.ndarray:
    """P-Net on one pyramid level: rows (x1, y1, x2, y2, score, 4 regression offsets) of the cells above threshold."""
    image = resample_whole(table, int(height * scale + 1), int(width * scale + 1))
    offsets, probs = pnet(image)
    ys, xs = np.nonzero(probs[0, 1] >= threshold)
    s = np.float32(scale)
    x1 = np.floor((PNET_STRIDE * xs + 1).astype(np.float32) / s)
    y1 = np.floor((PNET_STRIDE * ys + 1).astype(np.float32) / s)
    x2 = np.floor((PNET_STRIDE * xs + PNET_CELL).astype(np.float32) / s)
    y2 = np.floor((PNET_STRIDE * ys + PNET_CELL).astype(np.float32) / s)
    rows = np.column_stack([x1, y1, x2, y2, probs[0, 1, ys, xs], offsets[0][:, ys, xs].T]).astype(np.float32)
    return rows[nms(rows[:, :4], rows[:, 4], 0.5)]


def detect_faces(
    image_rgb: np.ndarray,
    pnet: Net,
    rnet: Net,
    onet: Net,
    min_face_size: int,
    thresholds: Sequence[float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the MTCNN cascade on an HxWx3 uint8 RGB image: (boxes n x 4, scores n, landmarks n x 5 x 2), float32.

    The image must be at least min_face_size on its shorter side (else the pyramid is empty).
    """
    height, width = image_rgb.shape[:2]
    table = integral_image(image_rgb)
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    # Stage 1: P-Net over the pyramid, NMS per level (0.5) then across levels (0.7), regression, square.
    levels = [_pnet_candidates(table, height, width, pnet, s, thresholds[0])
              for s in pyramid_scales(height, width, min_face_size)]
    rows = np.concatenate(levels)
    rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
    sizes = rows[:, 2:4] - rows[:, 0:2]
    boxes = _square(rows[:, :4] + rows[:, 5:9] * np.tile(sizes, 2))

    # Stage 2: R-Net on 24x24 crops, threshold, NMS (0.7), regression, square. A box wholly outside the image has
    # no pixel to crop and is dropped (facenet-pytorch would fail on it with mismatched batch sizes).
    regions, inside = _crop_regions(boxes, width, height)
    boxes, regions = boxes[inside], regions[inside]
    if len(boxes) == 0:
        return empty
    with reusing_freed_memory():  # hundreds of candidates in same-size batches: each batch's buffers serve the next
        offsets, probs = _run_batched(rnet, resample(table, regions, RNET_SIZE, RNET_SIZE))
    passed = probs[:, 1] > thresholds[1]
    boxes, scores, offsets = boxes[passed], probs[passed, 1], offsets[passed]
    keep = nms(boxes, scores, 0.7)
    boxes = _square(_refine(boxes[keep], offsets[keep]))

    # Stage 3: O-Net on 48x48 crops, threshold, landmarks, regression, NMS over the smaller box (0.7).
    regions, inside = _crop_regions(boxes, width, height)
    boxes, regions = boxes[inside], regions[inside]
    if len(boxes) == 0:
        return empty
    offsets, marks, probs = _run_batched(onet, resample(table, regions, ONET_SIZE, ONET_SIZE))
    passed = probs[:, 1] > thresholds[2]
    boxes, scores, offsets, marks = boxes[passed], probs[passed, 1], offsets[passed], marks[passed]
    origin = boxes[:, None, :2] - np.float32(1)
    size = boxes[:, None, 2:4] - boxes[:, None, :2] + np.float32(1)
    landmarks = np.stack([marks[:, :5], marks[:, 5:]], axis=2) * size + origin
    boxes = _refine(boxes, offsets)
    keep = nms(boxes, scores, 0.7, over_smaller=True)
    return boxes[keep], scores[keep], landmarks[keep]
