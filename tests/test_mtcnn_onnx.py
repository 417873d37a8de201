"""ONNX Runtime engine of MTCNN: the shipped graphs, parity with the torch engine on real images (and with a fresh
export), the numpy cascade, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.media import read_frames
from helpers.shared import DATA, HAMILTON, LFW_IMAGES, REPO, STREET, need, need_torch

from facewatch.detectors.face import MtcnnFaceDetector, OnnxMtcnnFaceDetector
from facewatch.detectors.mtcnn_onnx import integral_image, nms, pyramid_scales, resample, resample_whole
from facewatch.imageio import read_rgb
from facewatch.weights.registry import MTCNN_ONNX_FILES, REGISTRY, require, sha256_of

pytestmark = pytest.mark.slow  # the module is marked whole: nearly every test here runs real networks

SAMPLES = DATA / "facenet_pytorch_samples/data"

# Measured on this machine: the two engines agree to 1.2e-4 px on boxes, 2.4e-4 px on landmarks and exactly on
# scores (the cascades resample identically; only conv arithmetic differs). These bounds leave ~400x headroom for
# other CPUs / ONNX Runtime builds, and are far inside IoU >= 0.9, "a few pixels" and 0.01.
BOX_TOLERANCE_PX = 0.05
LANDMARK_TOLERANCE_PX = 0.05
SCORE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def onnx_files() -> list[Path]:
    """The three graphs shipped in facewatch/data/mtcnn, verified against their pinned sha256."""
    return [require(name, []) for name in MTCNN_ONNX_FILES]


@pytest.fixture(scope="module")
def onnx_mtcnn(onnx_files) -> OnnxMtcnnFaceDetector:
    """The ONNX engine with its defaults."""
    return OnnxMtcnnFaceDetector(*onnx_files)


@pytest.fixture(scope="module")
def torch_mtcnn() -> MtcnnFaceDetector:
    """The torch engine with its defaults: the reference."""
    need_torch()
    return MtcnnFaceDetector()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def frame_rgb(clip: Path, index: int) -> np.ndarray:
    """One frame of a clip, as RGB."""
    return cv2.cvtColor(read_frames(clip, {index})[index], cv2.COLOR_BGR2RGB)


# (image, number of faces). Counts of multiface, the LFW_IMAGES pictures and the Hamilton frame were checked by eye
# (see test_detectors.py); the street frame holds 5 visible faces among people seen from behind or in profile.
PARITY_CASES = {
    "multiface": (lambda: read_rgb(need(SAMPLES / "multiface.jpg")), 6),
    **{
        name: (lambda name=name: read_rgb(need(SAMPLES / "test_images" / name / "1.jpg")), 1)
        for name in ["angelina_jolie", "kate_siegel", "paul_rudd", "shea_whigham"]
    },
    **{
        name: (lambda name=name: read_rgb(need(LFW_IMAGES / name / f"{name}_0001.jpg")), 2 if name == "Nelson_Mandela" else 1)
        for name in ["Serena_Williams", "Laura_Bush", "Sean_Combs", "Nelson_Mandela"]
    },
    "hamilton_frame_100": (lambda: frame_rgb(HAMILTON, 100), 1),
    "street_frame_30": (lambda: frame_rgb(STREET, 30), 5),
}


def assert_same_faces(reference: list, faces: list, count: int) -> None:
    """Both engines found `count` faces, pairwise twins within the measured tolerances, sorted by score."""
    assert len(reference) == len(faces) == count
    twins = [max(faces, key=lambda face: iou(face.box, ref.box)) for ref in reference]
    assert len({id(twin) for twin in twins}) == count  # one-to-one
    for ref, twin in zip(reference, twins):
        assert iou(ref.box, twin.box) >= 0.999
        assert np.abs(ref.box - twin.box).max() <= BOX_TOLERANCE_PX
        assert np.abs(ref.landmarks - twin.landmarks).max() <= LANDMARK_TOLERANCE_PX
        assert abs(ref.score - twin.score) <= SCORE_TOLERANCE
        assert twin.box.dtype == np.float32 and twin.landmarks.shape == (5, 2)
    assert [face.score for face in faces] == sorted((face.score for face in faces), reverse=True)


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_onnx_engine_finds_the_faces_torch_finds(case, torch_mtcnn, onnx_mtcnn):
    load, count = PARITY_CASES[case]
    image = load()
    assert_same_faces(torch_mtcnn.detect(image), onnx_mtcnn.detect(image), count)


@pytest.mark.torch
def test_saturated_scores_break_ties_as_torch_does(onnx_files):
    # Found among 150 random LFW_IMAGES pictures: with min_face_size=20 two O-Net boxes of the face cut by the left border
    # both score exactly 1.0; taking the other one of the tie in the final NMS moved the box by 2.6 px.
    image = read_rgb(need(LFW_IMAGES / "Jonathan_Arden/Jonathan_Arden_0001.jpg"))
    settings = {"min_face_size": 20, "min_probability": 0.0}
    reference = MtcnnFaceDetector(**settings).detect(image)
    assert_same_faces(reference, OnnxMtcnnFaceDetector(*onnx_files, **settings).detect(image), 3)
    assert reference[0].score == 1.0 and reference[0].box[0] < 0


def test_min_probability_and_thresholds_act_as_in_torch(onnx_files):
    # The six O-Net scores on multiface.jpg: 0.999999, 0.999988, 0.999927, 0.999694, 0.999203, 0.998746.
    image = read_rgb(need(SAMPLES / "multiface.jpg"))
    assert len(OnnxMtcnnFaceDetector(*onnx_files, min_probability=0.9995).detect(image)) == 4
    assert len(OnnxMtcnnFaceDetector(*onnx_files, thresholds=(0.6, 0.7, 0.999)).detect(image)) == 5


@pytest.mark.parametrize("shape", [(480, 640, 3), (20, 20, 3)])
def test_no_face_in_blank_or_tiny_image(onnx_mtcnn, shape):
    assert onnx_mtcnn.detect(np.zeros(shape, np.uint8)) == []


def test_bad_image_is_refused(onnx_mtcnn):
    with pytest.raises(ValueError, match="image_rgb must be uint8"):
        onnx_mtcnn.detect(np.zeros((48, 64, 3), np.float32))


# ---------------------------------------------------------------- the numpy pieces against torch


@pytest.mark.parametrize(
    ("region", "size"),
    [((0, 0, 1200, 630), (214, 406)), ((417, 95, 512, 198), (24, 24)), ((0, 3, 17, 19), (48, 48))],
    ids=["pyramid-level", "downscaled-crop", "upscaled-crop-at-border"],
)
@pytest.mark.torch
def test_area_resampling_matches_torch(region, size):
    import torch
    from torch.nn.functional import interpolate

    image = read_rgb(need(SAMPLES / "multiface.jpg"))
    ours = resample(integral_image(image), np.array([region]), *size)
    x1, y1, x2, y2 = region
    patch = torch.as_tensor(image[y1:y2, x1:x2].copy()).permute(2, 0, 1)[None].float()
    theirs = ((interpolate(patch, size=size, mode="area") - 127.5) * 0.0078125).numpy()
    assert ours.shape == theirs.shape == (1, 3, *size) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-6


@pytest.mark.parametrize("size", [(325, 577), (109, 193), (12, 21), (700, 1300)], ids=["1080p-first-level", "webcam",
                                                                                   "last-level", "upscaled"])
def test_whole_image_resampling_is_the_region_resampling_to_the_bit(size):
    image = cv2.resize(read_rgb(need(SAMPLES / "multiface.jpg")), (1920, 1080))
    table = integral_image(image)
    whole = resample_whole(table, *size)
    assert whole.dtype == np.float32 and whole.flags.c_contiguous
    assert np.array_equal(whole, resample(table, np.array([[0, 0, 1920, 1080]]), *size))


def test_pyramid_scales_of_a_webcam_frame():
    scales = pyramid_scales(480, 640, 40)
    assert len(scales) == 8  # the shorter side at 0.3 is 144 px; 0.709**7 of it is 12.6 px, 0.709**8 is 9.0
    assert scales[0] == pytest.approx(0.3) and scales[-1] == pytest.approx(0.3 * 0.709**7)


def test_nms_overlap_modes():
    boxes = np.array([[0, 0, 100, 100], [10, 10, 50, 50], [5, 0, 105, 100], [200, 200, 240, 240]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    # IoU: the small inner box overlaps 0.16 (kept); the shifted one 0.905 (dropped).
    assert nms(boxes, scores, 0.7).tolist() == [0, 1, 3]
    # Over the smaller box, the inner box is fully covered (dropped).
    assert nms(boxes, scores, 0.7, over_smaller=True).tolist() == [0, 3]
    assert nms(boxes[:0], scores[:0], 0.7).tolist() == []


# ---------------------------------------------------------------- export and loading


@pytest.mark.torch
def test_a_fresh_export_is_the_shipped_graphs(tmp_path, onnx_files):
    from facewatch.build.export import export_mtcnn

    exported = export_mtcnn(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(MTCNN_ONNX_FILES)  # no temp leftovers
    # Byte for byte with the torch the files were exported with (PROVENANCE.md), else the same faces.
    image = read_rgb(need(SAMPLES / "multiface.jpg"))
    if not all(sha256_of(p) == REGISTRY[p.name].sha256 for p in exported):
        assert_same_faces(OnnxMtcnnFaceDetector(*onnx_files).detect(image),
                          OnnxMtcnnFaceDetector(*exported).detect(image), 6)


def test_shipped_graphs_take_dynamic_sizes(onnx_files):
    import onnx

    assert [path.name for path in onnx_files] == list(MTCNN_ONNX_FILES)
    shapes = []
    for path in onnx_files:
        dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
        shapes.append([dim.dim_param or dim.dim_value for dim in dims])
    assert shapes == [["batch", 3, "height", "width"], ["batch", 3, 24, 24], ["batch", 3, 48, 48]]


def test_missing_model_names_the_file_and_the_build_command(tmp_path, onnx_files):
    missing = tmp_path / "mtcnn_pnet.onnx"
    with pytest.raises(FileNotFoundError, match="facewatch models build") as info:
        OnnxMtcnnFaceDetector(missing, *onnx_files[1:])
    assert str(missing) in str(info.value)


def test_unreadable_or_swapped_model_is_refused(tmp_path, onnx_files):
    broken = tmp_path / "mtcnn_pnet.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable ONNX file"):
        OnnxMtcnnFaceDetector(broken, *onnx_files[1:])
    pnet, rnet, onet = onnx_files
    with pytest.raises(ValueError, match="is not an MTCNN R-Net export"):
        OnnxMtcnnFaceDetector(pnet, onet, rnet)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"thresholds": (0.6, 0.7)}, "thresholds must hold 3 values"), ({"threads": 0}, "threads must be 1 or more")],
)
def test_bad_settings_are_refused(onnx_files, settings, message):
    with pytest.raises(ValueError, match=message):
        OnnxMtcnnFaceDetector(*onnx_files, **settings)


# ---------------------------------------------------------------- the lean engine stays lean

NO_TORCH_PROBE = """
import json, sys
import facewatch.detectors.face as face
from facewatch.imageio import read_rgb
detector = face.OnnxMtcnnFaceDetector(*sys.argv[1:4])
faces = detector.detect(read_rgb(sys.argv[4]))
heavy = sorted(m for m in ("torch", "torchvision", "facenet_pytorch", "ultralytics") if m in sys.modules)
print(json.dumps({"faces": len(faces), "heavy": heavy}))
"""


def test_onnx_engine_never_imports_torch(onnx_files):
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH_PROBE, *map(str, onnx_files), str(need(SAMPLES / "multiface.jpg"))],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"faces": 6, "heavy": []}
