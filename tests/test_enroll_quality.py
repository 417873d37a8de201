"""Enrollment photo checks a person can live with: judged on the face as FaceNet sees it, dim faces accepted,
blur refused, and a failed enrollment leaves no empty person behind."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.shared import EXAMPLES, need

from facewatch.detectors.base import Face
from facewatch.evaluation.datasets import render
from facewatch.identity.enroll import enroll_images, shot_problem
from facewatch.imageio import read_rgb

pytestmark = pytest.mark.slow  # real MTCNN


@pytest.fixture(scope="module")
def lin():
    return read_rgb(need(EXAMPLES / "lin-manuel-miranda.png"))


def test_readme_sample_photo_passes_and_its_blurred_copy_does_not(lin, face_pipeline):
    faces = face_pipeline.detector.detect(lin)
    assert shot_problem(lin, faces) is None
    blurred = cv2.GaussianBlur(lin, (0, 0), 6)
    problem = shot_problem(blurred, face_pipeline.detector.detect(blurred))
    assert problem is not None and problem.startswith("blurred (sharpness ")


def test_a_dim_face_that_mtcnn_finds_is_enrollable_and_a_black_frame_is_not(lin, face_pipeline):
    dim = render(lin, "dim", "lin")
    assert float(cv2.cvtColor(dim, cv2.COLOR_RGB2GRAY).mean()) < 40
    assert shot_problem(dim, face_pipeline.detector.detect(dim)) is None
    black = np.full_like(lin, 3)
    face = Face(np.array([200, 150, 470, 480], np.float32), 0.99)
    assert shot_problem(black, [face]).startswith("too dark or flat to see the face (contrast 0")


def test_a_failed_enrollment_leaves_no_empty_person(tmp_path, face_pipeline):
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.full((200, 200, 3), 120, np.uint8))
    results = enroll_images(tmp_path / "faces" / "nobody", [empty], face_pipeline.detector)
    assert [r.reason for r in results] == ["no face found"]
    assert not (tmp_path / "faces" / "nobody").exists()
    existing = tmp_path / "faces" / "ann"
    existing.mkdir(parents=True)
    enroll_images(existing, [empty], face_pipeline.detector)
    assert existing.is_dir()  # a folder the user already had is left alone
