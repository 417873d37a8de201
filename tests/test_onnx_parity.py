"""ONNX Runtime engines of the person detector and FaceNet: held to the ultralytics / torch engines on real frames
and faces, the letterbox held to ultralytics' own, the export and int8 copy checked, and no torch import."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from helpers.media import read_frames
from helpers.shared import DATA, HAMILTON, LFW_IMAGES, REPO, STREET, TWO_PEOPLE, YOLO8, YOLO11, need

from facewatch.build.export import export_facenet, quantize_facenet
from facewatch.detectors.face import MtcnnFaceDetector
from facewatch.detectors.person import (
    OnnxPersonDetector,
    YoloPersonDetector,
    decode_persons,
    letterbox,
)
from facewatch.identity.embedding import OnnxEmbedder, TorchEmbedder, face_crops
from facewatch.imageio import read_rgb

pytestmark = pytest.mark.slow  # the module is marked whole: nearly every test here runs real networks

SAMPLES = DATA / "facenet_pytorch_samples/data/test_images"
# Hamilton frames counted by eye in test_detectors (yolo11n): 3 people at frame 12, then the singer alone.
HAMILTON_BY_EYE = {12: 3, 100: 1, 150: 1, 180: 1}
HAMILTON_FRAMES = set(range(0, 275, 25)) | set(HAMILTON_BY_EYE)  # 13 frames
STREET_FRAMES = set(range(0, 105, 9))  # 12 frames

# Measured here: both person engines give bit-identical boxes and scores (same ONNX Runtime, same letterbox, same
# decoding); FaceNet ONNX differs from torch by at most 1e-7 per component (cosine 0.9999998). The bounds leave
# room for other CPUs and ONNX Runtime builds and are far inside the required IoU >= 0.9 / cosine >= 0.999.
BOX_TOLERANCE_PX = 0.01
SCORE_TOLERANCE = 1e-5
EMBEDDING_TOLERANCE = 1e-5
# int8 (uint8-weight) FaceNet vs fp32 on these crops: minimum cosine 0.9973 measured.
INT8_MIN_COSINE = 0.995


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def people_frames() -> list[tuple[str, np.ndarray]]:
    """(name, BGR frame): the two-people photo, 13 Hamilton frames and 12 street frames."""
    import cv2

    frames = [("two_people", cv2.imread(str(need(TWO_PEOPLE))))]
    for clip, indexes in ((HAMILTON, HAMILTON_FRAMES), (STREET, STREET_FRAMES)):
        frames += [(f"{clip.stem}[{i}]", frame) for i, frame in sorted(read_frames(clip, indexes).items())]
    return frames


@pytest.fixture(scope="module")
def frames() -> list[tuple[str, np.ndarray]]:
    """The real frames of the person parity tests, decoded once."""
    return people_frames()


@pytest.fixture(scope="module")
def onnx_yolo11() -> OnnxPersonDetector:
    """The ONNX engine on the main person model."""
    return OnnxPersonDetector(need(YOLO11))


@pytest.fixture(scope="module")
def facenet_onnx(model_dirs, tmp_path_factory) -> Path:
    """The converted casia-webface FaceNet exported to ONNX once for this module."""
    from facewatch.weights.registry import casia_weights

    weights = casia_weights([Path(d) for d in model_dirs.split(os.pathsep)])
    return export_facenet(weights, tmp_path_factory.mktemp("facenet_onnx") / "facenet.onnx")


@pytest.fixture(scope="module")
def torch_embedder(model_dirs) -> TorchEmbedder:
    """The reference engine on the same weights."""
    from facewatch.weights.registry import casia_weights

    return TorchEmbedder.from_state_dict(casia_weights([Path(d) for d in model_dirs.split(os.pathsep)]))


@pytest.fixture(scope="module")
def face_crops_real() -> np.ndarray:
    """12 real 160x160 face crops: MTCNN's most certain face in 8 LFW_IMAGES photos and facenet-pytorch's 4 test images."""
    paths = sorted(need(LFW_IMAGES).glob("A*/*_0001.jpg"))[:8] + sorted(need(SAMPLES).glob("*/1.jpg"))
    mtcnn = MtcnnFaceDetector()
    crops = []
    for path in paths:
        image = read_rgb(path)
        crops.append(face_crops(image, mtcnn.detect(image)[0].box)[0])
    return np.stack(crops)


# ---------------------------------------------------------------- person detector


def test_letterbox_equals_ultralytics(frames):
    from ultralytics.data.augment import LetterBox

    # Frames of 1126x661, 640x360 and 1920x1080 into both model sizes: odd and even paddings, up- and downscaling.
    for _, frame in frames[:2] + frames[-1:]:
        for size in (320, 640):
            ours, _, _ = letterbox(frame, size, size)
            np.testing.assert_array_equal(ours, LetterBox((size, size))(image=frame))


def test_letterbox_geometry_with_odd_padding():
    frame = np.zeros((100, 201, 3), np.uint8)  # scaled to 320x159: 161 rows of padding, 80 above and 81 below
    padded, scale, pad = letterbox(frame, 320, 320)
    assert padded.shape == (320, 320, 3)
    assert pad == (0, 80)
    assert scale == (320 / 201, 159 / 100)
    assert np.all(padded[:80] == 114) and np.all(padded[80:239] == 0) and np.all(padded[239:] == 114)


def test_decode_keeps_best_class_persons_and_suppresses_overlaps():
    # Anchors (cx, cy, w, h in input pixels) with 3 class scores each (class 0 = person).
    anchors = np.array(
        [
            [100, 100, 40, 80, 0.90, 0.10, 0.00],  # a person
            [102, 101, 40, 80, 0.80, 0.10, 0.00],  # the same person again: IoU 0.88 with the first, suppressed
            [200, 100, 40, 80, 0.60, 0.70, 0.00],  # person score above threshold, but another class is better
            [300, 100, 40, 80, 0.50, 0.00, 0.00],  # exactly at the threshold: not above it
            [130, 100, 40, 80, 0.70, 0.00, 0.10],  # overlaps the first by IoU 0.14: kept
        ],
        np.float32,
    ).T
    boxes, scores = decode_persons(anchors, confidence=0.5, nms_iou=0.45)
    np.testing.assert_array_equal(boxes, np.float32([[80, 60, 120, 140], [110, 60, 150, 140]]))
    np.testing.assert_array_equal(scores, np.float32([0.9, 0.7]))


@pytest.mark.parametrize("model", [YOLO11, YOLO8], ids=["yolo11n_int8_320", "yolov8n_int8"])
def test_onnx_person_detector_equals_ultralytics(model, frames):
    reference, ours = YoloPersonDetector(need(model)), OnnxPersonDetector(model)
    assert ours.imgsz == ((320, 320) if model == YOLO11 else (640, 640))
    people = 0
    for name, frame in frames:
        expected, found = reference.detect(frame), ours.detect(frame)
        assert len(found) == len(expected), name
        people += len(found)
        for want, got in zip(expected, found):
            assert got.box.dtype == np.float32 and got.box.shape == (4,)
            assert iou(want.box, got.box) >= 0.9, name
            assert np.abs(want.box - got.box).max() <= BOX_TOLERANCE_PX, name
            assert abs(want.score - got.score) <= SCORE_TOLERANCE, name
        assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)
    assert people >= 80  # 25 frames, 1 to 9 people each: the comparison is not vacuous


def test_onnx_counts_agree_with_the_eye(onnx_yolo11, frames):
    by_name = dict(frames)
    counts = {i: len(onnx_yolo11.detect(by_name[f"{HAMILTON.stem}[{i}]"])) for i in HAMILTON_BY_EYE}
    assert counts == HAMILTON_BY_EYE
    people = onnx_yolo11.detect(by_name["two_people"])
    assert len(people) == 2
    # Boxes are in pixels of the 1126x661 photo, inside it: one person each side of the middle.
    assert all(0 <= p.box[0] < p.box[2] <= 1126 and 0 <= p.box[1] < p.box[3] <= 661 for p in people)
    assert sorted(p.box[0] < 563 for p in people) == [False, True]


def test_dynamic_input_model_runs_at_imgsz(onnx_yolo11, frames, tmp_path):
    import onnx

    graph = onnx.load(str(YOLO11))
    for dim in graph.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_param = "side"  # as `yolo export dynamic=True` marks it
    dynamic = tmp_path / "dynamic.onnx"
    onnx.save(graph, str(dynamic))
    detector = OnnxPersonDetector(dynamic, imgsz=320)
    assert detector.imgsz == (320, 320)
    frame = dict(frames)["two_people"]
    assert [(p.box.tolist(), p.score) for p in detector.detect(frame)] == [
        (p.box.tolist(), p.score) for p in onnx_yolo11.detect(frame)
    ]
    # This network's attention block was traced at 320: another size fails on load, with the fix in the message.
    with pytest.raises(ValueError, match="does not run at 640x640 .*set person.imgsz to the size it was exported at"):
        OnnxPersonDetector(dynamic, imgsz=640)


def test_onnx_person_detector_rejects_bad_models_and_frames(onnx_yolo11, facenet_onnx, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"person model .*none\.onnx does not exist; use an ultralytics"):
        OnnxPersonDetector(tmp_path / "none.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(YOLO11.read_bytes()[:5000])
    with pytest.raises(ValueError, match="is not a readable ONNX file"):
        OnnxPersonDetector(broken)
    with pytest.raises(ValueError, match="is not a YOLO detection export"):
        OnnxPersonDetector(facenet_onnx)
    with pytest.raises(ValueError, match="threads must be 1 or more"):
        OnnxPersonDetector(YOLO11, threads=0)
    with pytest.raises(ValueError, match="frame_bgr must have shape HxWx3"):
        onnx_yolo11.detect(np.zeros((100, 100), np.uint8))
    assert onnx_yolo11.detect(np.full((480, 640, 3), 114, np.uint8)) == []


# ---------------------------------------------------------------- FaceNet


def test_export_has_named_dynamic_batch_io(facenet_onnx):
    assert stat.S_IMODE(facenet_onnx.stat().st_mode) == 0o600
    assert [p.name for p in facenet_onnx.parent.iterdir()] == ["facenet.onnx"]  # no temp file left behind
    session = ort.InferenceSession(str(facenet_onnx), providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.shape, i.type) for i in session.get_inputs()]
    assert inputs == [("crops", ["batch", 3, 160, 160], "tensor(float)")]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("embeddings", ["batch", 512])]


def test_onnx_embeddings_equal_torch_on_real_faces(facenet_onnx, torch_embedder, face_crops_real):
    onnx_embedder = OnnxEmbedder(facenet_onnx)
    assert len(face_crops_real) == 12
    for mirror in (False, True):  # mirrored: 24 crops, more than one batch of 16
        ours, reference = onnx_embedder.embed(face_crops_real, mirror), torch_embedder.embed(face_crops_real, mirror)
        assert ours.shape == (12, 512) and ours.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        assert (ours * reference).sum(axis=1).min() >= 0.999
        assert np.abs(ours - reference).max() <= EMBEDDING_TOLERANCE
    one_by_one = np.concatenate([onnx_embedder.embed(crop[None]) for crop in face_crops_real])
    np.testing.assert_allclose(one_by_one, onnx_embedder.embed(face_crops_real), atol=1e-6)
    assert onnx_embedder.embed(face_crops_real[:0]).shape == (0, 512)


def test_int8_facenet_is_smaller_and_close(facenet_onnx, face_crops_real, tmp_path):
    int8 = quantize_facenet(facenet_onnx, tmp_path / "facenet_int8.onnx")
    assert stat.S_IMODE(int8.stat().st_mode) == 0o600
    assert int8.stat().st_size < 0.3 * facenet_onnx.stat().st_size
    fp32_emb = OnnxEmbedder(facenet_onnx).embed(face_crops_real)
    int8_emb = OnnxEmbedder(int8).embed(face_crops_real)
    assert (fp32_emb * int8_emb).sum(axis=1).min() >= INT8_MIN_COSINE


def test_onnx_embedder_rejects_bad_models_and_crops(facenet_onnx, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"FaceNet model .*none\.onnx does not exist; build it with"):
        OnnxEmbedder(tmp_path / "none.onnx")
    with pytest.raises(ValueError, match="is not a FaceNet export"):
        OnnxEmbedder(need(YOLO11))
    embedder = OnnxEmbedder(facenet_onnx)
    with pytest.raises(ValueError, match="takes 160x160 crops, got 112x112"):
        embedder.embed(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB crops"):
        embedder.embed(np.zeros((1, 160, 160, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        quantize_facenet(tmp_path / "none.onnx", tmp_path / "int8.onnx")


# ---------------------------------------------------------------- lean engine

NO_TORCH_PROBE = r"""
import json, sys
from pathlib import Path
import cv2
from facewatch.detectors.person import OnnxPersonDetector
from facewatch.identity.embedding import OnnxEmbedder, face_crops
person_model, facenet, photo = map(Path, sys.argv[1:])
frame = cv2.imread(str(photo))
people = OnnxPersonDetector(person_model).detect(frame)
boxes = [p.box for p in people]  # any crop will do: the probe is about imports, not faces
embeddings = OnnxEmbedder(facenet).embed(face_crops(frame[:, :, ::-1].copy(), boxes))
heavy = sorted(m for m in ("torch", "torchvision", "ultralytics", "facenet_pytorch") if m in sys.modules)
print(json.dumps({"people": len(people), "embeddings": list(embeddings.shape), "heavy": heavy}))
"""


def test_onnx_engines_never_import_torch(facenet_onnx):
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH_PROBE, str(need(YOLO11)), str(facenet_onnx), str(need(TWO_PEOPLE))],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"people": 2, "embeddings": [2, 512], "heavy": []}
