"""Detectors on real images and clips: MTCNN face counts and landmarks, YOLO person counts, bad input, no network."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.media import read_frames
from helpers.shared import DATA, HAMILTON, LFW_IMAGES, REPO, STREET, TWO_PEOPLE, YOLO8, YOLO11, need

from facewatch.detectors.base import check_image
from facewatch.detectors.face import MtcnnFaceDetector
from facewatch.detectors.person import ModelNotFoundError, YoloPersonDetector

pytestmark = pytest.mark.slow  # the module is marked whole: nearly every test here runs real networks


def read_rgb(path: Path) -> np.ndarray:
    """Load an image file as RGB, the order the face detector takes."""
    return cv2.cvtColor(cv2.imread(str(need(path))), cv2.COLOR_BGR2RGB)


def contains(box: np.ndarray, x: float, y: float) -> bool:
    """Whether the point (x, y) lies inside box (x1, y1, x2, y2)."""
    return bool(box[0] <= x <= box[2] and box[1] <= y <= box[3])


@pytest.fixture(scope="module")
def mtcnn() -> MtcnnFaceDetector:
    """The face detector with its defaults, loaded once for the module."""
    return MtcnnFaceDetector()


@pytest.fixture(scope="module")
def yolo11() -> YoloPersonDetector:
    """The main (fast) person model: YOLO11n int8 with a fixed 320x320 input."""
    return YoloPersonDetector(need(YOLO11))


# ---------------------------------------------------------------- faces


def test_multiface_finds_all_six_friends(mtcnn):
    faces = mtcnn.detect(read_rgb(DATA / "facenet_pytorch_samples/data/multiface.jpg"))
    assert len(faces) == 6  # counted by eye: six people, all faces visible
    scores = [face.score for face in faces]
    assert scores == sorted(scores, reverse=True)
    assert min(scores) >= 0.9
    for face in faces:
        assert face.box.dtype == np.float32 and face.box.shape == (4,)
        assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (5, 2)
        assert all(contains(face.box, x, y) for x, y in face.landmarks)


def test_min_probability_drops_less_certain_faces():
    # The six O-Net scores on multiface.jpg are 0.999999, 0.999988, 0.999927, 0.999694, 0.999203, 0.998746.
    strict = MtcnnFaceDetector(min_probability=0.9995)
    assert len(strict.detect(read_rgb(DATA / "facenet_pytorch_samples/data/multiface.jpg"))) == 4


@pytest.mark.parametrize(
    "name", ["Serena_Williams", "Angelina_Jolie", "Laura_Bush", "Sean_Combs", "Coleen_Rowley", "Derrick_Taylor"]
)
def test_lfw_single_face_is_the_central_one(mtcnn, name):
    image = read_rgb(LFW_IMAGES / name / f"{name}_0001.jpg")  # checked by eye: nobody else in these pictures
    faces = mtcnn.detect(image)
    assert len(faces) == 1
    assert contains(faces[0].box, image.shape[1] / 2, image.shape[0] / 2)
    assert all(contains(faces[0].box, x, y) for x, y in faces[0].landmarks)


def test_lfw_background_face_is_reported_beside_the_central_one(mtcnn):
    # Nelson_Mandela_0001: a man's face, cut by the left border, behind Mandela; onlookers must not be dropped.
    image = read_rgb(LFW_IMAGES / "Nelson_Mandela/Nelson_Mandela_0001.jpg")
    faces = mtcnn.detect(image)
    assert len(faces) == 2
    assert sum(contains(face.box, 125, 125) for face in faces) == 1
    assert sum(face.box[0] < 0 for face in faces) == 1  # the cut one extends past the left border


@pytest.mark.parametrize("shape", [(480, 640, 3), (20, 20, 3)])
def test_no_face_in_blank_or_tiny_image(mtcnn, shape):
    assert mtcnn.detect(np.zeros(shape, np.uint8)) == []


# ---------------------------------------------------------------- people


@pytest.mark.parametrize("model", [YOLO11, YOLO8], ids=["yolo11n_int8_320", "yolov8n_int8"])
def test_two_people(model):
    people = YoloPersonDetector(need(model)).detect(cv2.imread(str(need(TWO_PEOPLE))))
    assert len(people) == 2
    assert people[0].score >= people[1].score
    assert all(person.box.dtype == np.float32 for person in people)
    # Boxes are in pixels of the 1126x661 photo: one person each side of the middle.
    assert sorted(contains(person.box, 280, 330) for person in people) == [False, True]
    assert sorted(contains(person.box, 850, 330) for person in people) == [False, True]


def test_fixed_onnx_input_size_overrides_imgsz(caplog):
    with caplog.at_level(logging.DEBUG, logger="facewatch.detectors.person"):
        detector = YoloPersonDetector(need(YOLO8), imgsz=320)
    assert detector.imgsz == 640
    assert [r.getMessage() for r in caplog.records] == [
        "yolov8n_int8.onnx has a fixed 640x640 input; using it instead of imgsz=320"
    ]


def test_hamilton_clip_counts(yolo11):
    # Checked by eye. Frame 12: the singer, the pianist at the left, the back of a head in the front row.
    # Frames 100, 150, 180: the singer alone in front of the curtain.
    expected = {12: 3, 100: 1, 150: 1, 180: 1}
    frames = read_frames(HAMILTON, set(expected))
    assert {i: len(yolo11.detect(frame)) for i, frame in frames.items()} == expected


def test_street_clip_counts_in_unambiguous_regions(yolo11):
    # video.mp4 is a crowd: every full frame holds 8-12 people, many half hidden, so no full frame has a count
    # one can verify by eye. These regions (x ranges of the 1920x1080 frame) do: checked by eye, nobody else in them.
    regions = {
        12: ((1400, 1700), 1),  # the grey-haired woman walking away, right
        45: ((1420, 1750), 1),  # the same woman, further on
        60: ((0, 765), 2),  # the white-haired woman and the red-haired young man, left
    }
    frames = read_frames(STREET, set(regions))
    counts = {i: len(yolo11.detect(frames[i][:, x1:x2])) for i, ((x1, x2), _) in regions.items()}
    assert counts == {i: count for i, (_, count) in regions.items()}


# ---------------------------------------------------------------- bad input


def test_missing_model_names_the_file_and_where_to_get_it(tmp_path):
    missing = tmp_path / "person.onnx"
    with pytest.raises(ModelNotFoundError) as info:
        YoloPersonDetector(missing)
    assert isinstance(info.value, FileNotFoundError)
    assert str(missing) in str(info.value)
    assert "https://github.com/ultralytics/assets/releases" in str(info.value)


def test_failed_download_is_a_clear_missing_model_error(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network blocked by test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(ModelNotFoundError, match="its download failed"):
        YoloPersonDetector(tmp_path / "yolov8n.pt")  # a name ultralytics would download
    assert not (tmp_path / "yolov8n.pt").exists()


def test_original_yolov5_checkpoint_points_to_its_successor():
    with pytest.raises(ValueError, match="yolov5nu.pt"):
        YoloPersonDetector("yolov5n.pt")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("broken.onnx", b"not a model", "not a readable ONNX file"), ("model.tflite", b"", "expected a .pt or .onnx")],
)
def test_unusable_model_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        YoloPersonDetector(path)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((48, 64), np.uint8), "shape HxWx3"),
        (np.zeros((48, 64, 4), np.uint8), "shape HxWx3"),
        (np.zeros((48, 64, 3), np.float32), "must be uint8"),
        (np.zeros((0, 64, 3), np.uint8), "is empty"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_check_image_rejects(image, message):
    with pytest.raises(ValueError, match=message):
        check_image(image)


def test_detectors_reject_bad_frames(mtcnn, yolo11):
    with pytest.raises(ValueError, match="frame_bgr must have shape HxWx3"):
        yolo11.detect(np.zeros((48, 64), np.uint8))
    with pytest.raises(ValueError, match="frame_bgr must be uint8"):
        yolo11.detect(np.zeros((48, 64, 3), np.float64))
    with pytest.raises(ValueError, match="image_rgb must be uint8"):
        mtcnn.detect(np.zeros((48, 64, 3), np.float32))


# ---------------------------------------------------------------- privacy

# Runs in a fresh interpreter (ultralytics reads its switches once, at import, and stays silent under pytest anyway).
# The network is faked as *online*: DNS answers, every connection is refused and recorded.
NETWORK_PROBE = """
import json, socket, sys, threading
attempts = []

def fake_dns(host, port, *args, **kwargs):
    attempts.append(f"dns {host}")
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", port or 443))]

def refuse(self, address):
    attempts.append(f"connect {address}")
    raise OSError("network blocked by test")

socket.getaddrinfo = fake_dns
socket.socket.connect = refuse
import cv2
model, image, through = sys.argv[1], cv2.imread(sys.argv[2]), sys.argv[3]
if through == "ultralytics-then-facewatch":
    import ultralytics  # imported first, before facewatch could set its switches
if through != "ultralytics":
    from facewatch.detectors.person import YoloPersonDetector
    people = len(YoloPersonDetector(model).detect(image))
else:
    from ultralytics import YOLO
    people = len(YOLO(model, task="detect").predict(image, classes=[0], conf=0.5, verbose=False)[0].boxes)
for thread in threading.enumerate():
    if thread is not threading.main_thread():
        thread.join(timeout=10)  # ultralytics posts its events from a background thread
from ultralytics.utils import ONLINE
from ultralytics.utils.events import events
print(json.dumps({"people": people, "online": ONLINE, "events": events.enabled, "attempts": attempts}))
"""


def run_network_probe(tmp_path: Path, through: str) -> dict:
    """Detect on two_people.jpg in a fresh interpreter with a fake online network; return what it reports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_") and k != "PYTEST_CURRENT_TEST"}
    env.update(PYTHONPATH=str(REPO), YOLO_CONFIG_DIR=str(tmp_path))  # a fresh ultralytics settings file (sync on)
    done = subprocess.run(
        [sys.executable, "-c", NETWORK_PROBE, str(need(YOLO11)), str(need(TWO_PEOPLE)), through],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_person_detector_sends_nothing(tmp_path):
    report = run_network_probe(tmp_path, "facewatch")
    assert report == {"people": 2, "online": False, "events": False, "attempts": []}


def test_person_detector_sends_nothing_after_an_earlier_ultralytics_import(tmp_path):
    # ultralytics' own import-time DNS probe has already run (not ours to stop); no event may be posted after it.
    report = run_network_probe(tmp_path, "ultralytics-then-facewatch")
    assert report == {"people": 2, "online": True, "events": False, "attempts": ["dns one.one.one.one"]}


def test_network_probe_catches_plain_ultralytics_phoning_home(tmp_path):
    # The control: the same probe without facewatch's switches sees ultralytics go online and post analytics.
    report = run_network_probe(tmp_path, "ultralytics")
    assert report["people"] == 2 and report["online"] is True and report["events"] is True
    assert any(a.startswith("dns one.one.one.one") for a in report["attempts"])
    assert any(a.startswith("connect") for a in report["attempts"])
