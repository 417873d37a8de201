"""The Siamese head: shipped weights load, numpy equals torch, symmetric, in [0, 1], seeded training, and its
recorded accuracy on held-out AT&T people reproduced from the images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.shared import DATA, need

from facewatch.config import load_config
from facewatch.engine import load_matcher
from facewatch.evaluation.datasets import embed_dataset
from facewatch.evaluation.identification import identity_images
from facewatch.evaluation.metrics import all_pairs, balanced_accuracy, pair_scores
from facewatch.identity.matching import (
    COSINE_THRESHOLDS,
    CosineMatcher,
    SiameseMatcher,
    decide,
    siamese_files,
)
from facewatch.identity.siamese import (
    FEATURES,
    HeadError,
    SiameseHead,
    TrainSettings,
    sample_pairs,
    torch_module,
    train_head,
)

HEAD_FILE, RECORD_FILE = siamese_files("casia-webface")


@pytest.fixture(scope="module")
def head() -> SiameseHead:
    return SiameseHead.load(HEAD_FILE)


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD_FILE.read_text())


def unit_rows(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 512)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_shipped_head_and_record_belong_together(head, record):
    assert head.w1.shape == (FEATURES, record["training"]["hidden"]) and head.w2.shape == head.b1.shape
    assert record["weights"] == "casia-webface" and 0 < record["threshold"] < 1
    assert not set(record["split"]["att_train"]) & set(record["split"]["att_heldout"])
    assert record["metrics"]["lfw_10fold"]["siamese"]["accuracy_mean"] > 0.97


def test_numpy_forward_equals_torch_forward(head):
    a, b = unit_rows(64, 1), unit_rows(64, 2)
    ours = head.score_pairs(a, b)
    features = torch.from_numpy(np.concatenate([np.abs(a - b), a * b], axis=1))
    with torch.no_grad():
        theirs = torch.sigmoid(torch_module(head)(features)[:, 0]).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_scores_are_symmetric_probabilities_and_the_matrix_agrees(head):
    a, b = unit_rows(40, 3), unit_rows(40, 4)
    s = head.score_pairs(a, b)
    assert np.array_equal(s, head.score_pairs(b, a))
    assert ((s >= 0) & (s <= 1)).all()
    assert head.score_pairs(a[:1], a[:1])[0] > head.score_pairs(a[:1], b[:1])[0]  # itself beats a random face
    matrix = head.similarity(a[:5], b[:7])
    assert matrix.shape == (5, 7)
    np.testing.assert_allclose(matrix[2], head.score_pairs(np.repeat(a[2:3], 7, axis=0), b[:7]), atol=1e-7)
    assert head.similarity(a[:3], np.zeros((0, 512))).shape == (3, 0)


def test_head_file_round_trips_and_bad_files_are_named(tmp_path, head):
    path = tmp_path / "head.npz"
    path.write_bytes(head.to_bytes())
    again = SiameseHead.load(path)
    assert np.array_equal(again.w1, head.w1) and again.b2 == pytest.approx(head.b2)
    with pytest.raises(HeadError, match="missing.npz do not exist"):
        SiameseHead.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not numpy")
    with pytest.raises(HeadError, match="junk.npz is not a Siamese head weights file"):
        SiameseHead.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "small.npz", w1=np.zeros((10, 4)), b1=np.zeros(4), w2=np.zeros(4), b2=np.float32(0))
    with pytest.raises(HeadError, match=r"small.npz: weight shapes \(10, 4\)"):
        SiameseHead.load(tmp_path / "small.npz")


def test_sample_pairs_is_balanced_and_labelled_right():
    labels = ["a"] * 5 + ["b"] * 3 + ["c"]
    i, j, same = sample_pairs(labels, np.random.default_rng(0), max_positives_per_person=4)
    assert same.sum() == 4 + 3 and (~same).sum() == 7  # a: 10 pairs capped to 4; b: 3; c has none
    labels = np.array(labels)
    assert np.array_equal(labels[i] == labels[j], same) and (i != j).all()
    with pytest.raises(ValueError, match="at least one person with two or more images"):
        sample_pairs(["a", "b"], np.random.default_rng(0))


@pytest.mark.slow
def test_training_is_seeded_and_learns_identities():
    centres = unit_rows(12, 5)
    noise = np.random.default_rng(6).normal(scale=0.03, size=(12 * 6, 512))
    emb = np.repeat(centres, 6, axis=0) + noise
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = np.repeat(np.arange(12), 6)
    settings = TrainSettings(hidden=8, epochs=50, learning_rate=1e-2, seed=3)
    first, second = train_head(emb, labels, settings), train_head(emb, labels, settings)
    assert np.array_equal(first.w1, second.w1) and first.b2 == second.b2
    i, j, same = all_pairs(labels)
    assert balanced_accuracy(first.score_pairs(emb[i], emb[j]), same, 0.5) == 1.0
    with pytest.raises(ValueError, match="3 embeddings but 2 labels"):
        train_head(emb[:3], [0, 1], settings)


def test_matcher_uses_the_recorded_threshold_and_numpy_only(head, record):
    matcher = SiameseMatcher.shipped("casia-webface")
    assert matcher.threshold == record["threshold"]
    gallery = unit_rows(3, 7)
    matches = decide(matcher, gallery[[2, 0]], gallery, ["ann", "bob", "cid"])
    assert [m.name for m in matches] == ["cid", "ann"]
    assert decide(matcher, unit_rows(1, 8), gallery, ["ann", "bob", "cid"])[0].name is None
    assert SiameseMatcher.shipped("casia-webface", threshold=0.9).threshold == 0.9
    with pytest.raises(HeadError, match="no Siamese head is shipped for vggface2 embeddings"):
        SiameseMatcher.shipped("vggface2")


def test_load_matcher_picks_method_and_threshold(tmp_path):
    config = load_config()
    cosine = load_matcher(config, "casia-webface")
    assert isinstance(cosine, CosineMatcher) and cosine.threshold is None  # per-person calibrated points
    assert isinstance(load_matcher(config, "casia-webface", "siamese"), SiameseMatcher)
    path = tmp_path / "config.yaml"
    path.write_text("matching:\n  method: siamese\n  threshold: 0.8\n")
    config = load_config(path)
    siamese = load_matcher(config, "casia-webface")
    assert isinstance(siamese, SiameseMatcher) and siamese.threshold == 0.8
    # The configured threshold belongs to the configured method; cosine then keeps its calibrated points.
    assert load_matcher(config, "casia-webface", "cosine").threshold is None


def test_heldout_att_accuracy_matches_the_record(face_pipeline, head, record):
    """Re-embed the held-out AT&T people from their images and verify every pair at the recorded thresholds."""
    att = need(DATA / "att_faces")
    keys, names = identity_images(att)
    heldout = set(record["split"]["att_heldout"])
    keep = [i for i, n in enumerate(names) if n in heldout]
    keys, names = [keys[i] for i in keep], [names[i] for i in keep]
    emb = embed_dataset(att, keys, face_pipeline.detector, face_pipeline.embedder, model_id="casia-webface",
                        detector_id="test", margin=record["embedding"]["margin"])
    vectors = emb.vectors(record["embedding"]["mirror"])[emb.rows(keys)]
    i, j, same = all_pairs(names)
    expected = record["metrics"]["att_heldout"]
    assert (len(same), int(same.sum())) == (expected["pairs"], expected["same_pairs"])
    siamese = balanced_accuracy(head.score_pairs(vectors[i], vectors[j]), same, record["threshold"])
    cosine = balanced_accuracy(pair_scores(vectors[i], vectors[j]), same, expected["cosine"]["threshold"])
    print(f"\nAT&T held-out {sorted(heldout)}: siamese {siamese:.4f}, cosine {cosine:.4f} (balanced accuracy)")
    assert siamese >= expected["siamese"]["balanced_accuracy"] - 0.005
    assert cosine >= expected["cosine"]["balanced_accuracy"] - 0.005
