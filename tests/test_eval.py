"""Evaluation: the LFW protocol arithmetic on hand-checked numbers, identification counts on real photos, and one
real LFW fold from cached embeddings."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from helpers.shared import DATA, REPO, need, reuse_cohort_embeddings

from facewatch.detectors.base import Face
from facewatch.evaluation.datasets import (
    DatasetEmbeddings,
    ProtocolError,
    central_face,
    embed_dataset,
)
from facewatch.evaluation.identification import (
    IdentifySplit,
    after_second_look,
    identification_counts,
    identity_images,
    second_looks,
    split_identities,
)
from facewatch.evaluation.lfw import read_pairs
from facewatch.evaluation.metrics import (
    accuracy,
    best_threshold,
    fold_scores,
    kfold,
    own_fold_scores,
    roc_curve,
    tar_at_far,
)
from facewatch.identity.matching import Match

PAIRS = """2\t2
Ann\t1\t2
Bob\t1\t3
Ann\t1\tBob\t2
Cid\t4\tDee\t1
Eve\t1\t2
Fay\t2\t3
Gus\t1\tHal\t1
Eve\t3\tIda\t10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    return path


# --- pairs file --------------------------------------------------------------------------------------------


def test_read_pairs_folds_labels_and_image_paths(tmp_path):
    pairs = read_pairs(write(tmp_path, PAIRS))
    assert pairs.first == ["Ann/Ann_0001.jpg", "Bob/Bob_0001.jpg", "Ann/Ann_0001.jpg", "Cid/Cid_0004.jpg",
                           "Eve/Eve_0001.jpg", "Fay/Fay_0002.jpg", "Gus/Gus_0001.jpg", "Eve/Eve_0003.jpg"]
    assert pairs.second == ["Ann/Ann_0002.jpg", "Bob/Bob_0003.jpg", "Bob/Bob_0002.jpg", "Dee/Dee_0001.jpg",
                            "Eve/Eve_0002.jpg", "Fay/Fay_0003.jpg", "Hal/Hal_0001.jpg", "Ida/Ida_0010.jpg"]
    assert pairs.same.tolist() == [True, True, False, False] * 2
    assert pairs.fold.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert pairs.n_folds == 2
    assert len(pairs.images) == 15 and pairs.images[0] == "Ann/Ann_0001.jpg"


def test_real_pairs_file_has_the_standard_shape(data_dir):
    pairs = read_pairs(need(data_dir / "lfw" / "pairs.txt"))
    assert (len(pairs.same), int(pairs.same.sum()), pairs.n_folds, len(pairs.images)) == (6000, 3000, 10, 7701)
    assert np.bincount(pairs.fold).tolist() == [600] * 10
    assert pairs.same[:300].all() and not pairs.same[300:600].any()
    names = [{k.split("/")[0] for k in np.array(pairs.first + pairs.second)[np.tile(pairs.fold == f, 2)]}
             for f in range(10)]
    assert all(not names[a] & names[b] for a in range(10) for b in range(a + 1, 10))  # identity-disjoint folds


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "line 1 must be '<folds> <pairs per class>'"),
        ("2 2\nAnn 1 2\n", "header promises 2x2x2 = 8 pairs, found 1"),
        (PAIRS.replace("Bob\t1\t3", "Bob\t1\tBob\t3"), "pair line 3 is 'Bob 1 Bob 3', expected 'name i j'"),
        (PAIRS.replace("Cid\t4\tDee\t1", "Cid\t4\t1"), "pair line 5 is 'Cid 4 1', expected 'name1 i name2 j'"),
        (PAIRS.replace("Ann\t1\t2", "Ann\tone\t2"), "pair line 2 is 'Ann one 2'"),
    ],
)
def test_read_pairs_names_the_bad_line(tmp_path, text, message):
    with pytest.raises(ProtocolError, match="pairs.txt: " + message.replace("(", r"\(").replace(")", r"\)")):
        read_pairs(write(tmp_path, text))


def test_read_pairs_missing_file(tmp_path):
    with pytest.raises(ProtocolError, match="cannot be read"):
        read_pairs(tmp_path / "nope.txt")


# --- protocol arithmetic -----------------------------------------------------------------------------------


def test_best_threshold_midpoints_and_lowest_on_a_tie():
    scores = np.array([0.8, 0.1, 0.6, 0.7, 0.2])
    same = np.array([True, False, True, False, False])
    # Candidates -0.9, 0.15, 0.4, 0.65, 0.75, 1.8 get 2, 3, 4, 3, 4, 3 right: 0.4 and 0.75 tie, the lower wins.
    assert best_threshold(scores, same) == pytest.approx(0.4)
    assert accuracy(scores, same, 0.4) == pytest.approx(0.8)
    assert best_threshold(np.array([0.3, 0.3, 0.9]), np.array([False, False, True])) == pytest.approx(0.6)
    assert best_threshold(np.array([0.5, 0.5]), np.array([True, True])) == pytest.approx(-0.5)  # accept all


def test_kfold_threshold_comes_from_the_other_folds():
    same = np.array([True, False, True, False, True, False])
    fold = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array([0.9, 0.1, 0.8, 0.3, 0.2, 0.25])
    result = kfold(np.tile(scores, (3, 1)), same, fold)
    # Test fold 0: train {0.8 T, 0.3 F, 0.2 T, 0.25 F} → 0.55 gets 3 of 4; fold 1: train {0.9 T, 0.1 F, 0.2 T,
    # 0.25 F} → 0.15 and 0.575 both get 3 of 4, the lower wins; fold 2: train {0.9 T, 0.1 F, 0.8 T, 0.3 F} → 0.55.
    assert result.thresholds == pytest.approx([0.55, 0.15, 0.55])
    assert result.accuracies.tolist() == [1.0, 0.5, 0.5]
    assert result.mean == pytest.approx(2 / 3) and result.std == pytest.approx(np.std([1.0, 0.5, 0.5]))
    with pytest.raises(ValueError, match=r"scores_by_fold must be \(3, 6\)"):
        kfold(scores, same, fold)


def test_fold_scores_subtract_the_training_folds_mean():
    first = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    second = np.array([[1.0, 0.2], [0.2, 1.0], [3.0, 1.0]])
    fold = np.array([0, 1, 1])
    plain = fold_scores(first, second, fold, "cosine")
    assert plain.shape == (2, 3) and np.allclose(plain[0], plain[1])
    assert plain[0, 0] == pytest.approx(1 / np.sqrt(1.04))
    centred = fold_scores(first, second, fold, "cosine", subtract_mean=True)
    # Row 0 (fold 0 tested): mean of the fold-1 images = (0,1),(1,1),(0.2,1),(3,1) → (1.05, 1).
    a, b = first[0] - [1.05, 1.0], second[0] - [1.05, 1.0]
    assert centred[0, 0] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-6)
    assert own_fold_scores(centred, fold).tolist() == [centred[0, 0], centred[1, 1], centred[1, 2]]
    euclid = fold_scores(first, second, fold, "euclidean")
    assert euclid[0].tolist() == pytest.approx([-0.2, -0.2, -2.0])


def test_tar_at_far_sets_the_threshold_from_the_negatives():
    negatives = np.linspace(0.0, 0.999, 1000)  # highest 0.999, second 0.998
    positives = np.array([0.9985, 0.999, 0.5, 1.0])
    scores = np.concatenate([negatives, positives])
    same = np.concatenate([np.zeros(1000, bool), np.ones(4, bool)])
    tar, threshold = tar_at_far(scores, same, 1e-3)  # one false accept allowed: threshold just above 0.998
    assert 0.998 < threshold < 0.9985 and tar == 0.75
    assert np.mean(negatives >= threshold) == pytest.approx(1e-3)
    tar, threshold = tar_at_far(scores, same, 1e-4)  # none allowed: just above 0.999
    assert 0.999 < threshold and tar == 0.25
    assert tar_at_far(scores, same, 1.0) == (1.0, -np.inf)


def test_roc_runs_from_strict_to_lenient():
    far, tar = roc_curve(np.array([0.9, 0.8, 0.7, 0.1]), np.array([True, False, True, False]))
    assert far.tolist() == [0.0, 0.5, 0.5, 1.0] and tar.tolist() == [0.5, 0.5, 1.0, 1.0]


def test_central_face_prefers_the_middle_over_the_surest():
    edge = Face(np.array([0, 0, 50, 50], np.float32), 0.999)
    middle = Face(np.array([80, 70, 170, 190], np.float32), 0.95)
    assert central_face([edge, middle], (250, 250, 3)) is middle
    assert central_face([], (250, 250, 3)) is None


# --- dataset embeddings and their cache --------------------------------------------------------------------


class FakeDetector:
    """Finds one face in the middle of every image except those whose top-left pixel is 0."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        h, w = image.shape[:2]
        return [] if image[0, 0, 0] == 0 else [Face(np.array([w / 4, h / 4, 3 * w / 4, 3 * h / 4], np.float32), 1.0)]


class FakeEmbedder:
    """One-hot embedding at the crop's mean brightness; counts crops."""

    def __init__(self) -> None:
        self.crops = 0

    def embed(self, crops, mirror=False):
        self.crops += len(crops)
        out = np.zeros((len(crops), 512), np.float32)
        out[np.arange(len(crops)), crops.reshape(len(crops), -1).mean(axis=1).astype(int)] = 1.0
        return out


def test_embed_dataset_caches_boxes_and_embeddings_and_counts_faceless_images(tmp_path):
    import cv2

    root = tmp_path / "faces"
    for name, value in (("a", 10), ("b", 0), ("c", 30)):
        (root / name).mkdir(parents=True)
        cv2.imwrite(str(root / name / "1.png"), np.full((80, 40, 3), value, np.uint8))
    keys = ["c/1.png", "a/1.png", "b/1.png"]
    detector, embedder, cache = FakeDetector(), FakeEmbedder(), tmp_path / "cache"
    run = lambda margin: embed_dataset(root, keys, detector, embedder, model_id="m", detector_id="d",  # noqa: E731
                                       margin=margin, cache_dir=cache)
    emb = run(0)
    assert emb.keys == ["a/1.png", "b/1.png", "c/1.png"] and emb.found.tolist() == [True, False, True]
    assert emb.no_face == ["b/1.png"]
    # The faceless image gets the median of the found boxes relative to image size: the central quarter box.
    assert emb.boxes[1].tolist() == [10.0, 20.0, 30.0, 60.0]
    assert (detector.calls, embedder.crops) == (3, 6)  # every crop embedded as is and flipped
    assert emb.rows(["c/1.png", "a/1.png"]).tolist() == [2, 0]
    assert np.allclose(np.linalg.norm(emb.vectors(mirror=True), axis=1), 1.0)
    files = sorted(cache.iterdir())
    assert len(files) == 2 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    again = run(0)
    assert (detector.calls, embedder.crops) == (3, 6) and np.array_equal(again.plain, emb.plain)
    run(16)  # another margin re-embeds, but reuses the boxes
    assert (detector.calls, embedder.crops) == (3, 12)
    with pytest.raises(ProtocolError, match="1 image\\(s\\) missing under .*faces, e.g. z/9.png"):
        embed_dataset(root, ["z/9.png"], detector, embedder, model_id="m", detector_id="d")


# --- identification ----------------------------------------------------------------------------------------


def test_split_is_seeded_and_keeps_strangers_out_of_the_gallery():
    names = ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"] * 1
    split = split_identities(names, enrolled=2, per_person=2, seed=3)
    assert split == split_identities(names, enrolled=2, per_person=2, seed=3)
    assert set(split.enrolled) <= {"a", "b"}  # only people with more than 2 photos can be enrolled
    assert len(split.gallery) == 4 and sorted(split.gallery + split.probes) == list(range(10))
    assert all(names[i] in split.enrolled for i in split.gallery)
    assert [t for t in split.truth if t is not None] == [names[i] for i in split.probes if names[i] in split.enrolled]
    assert split.truth.count(None) == 3
    with pytest.raises(ValueError, match="cannot enroll 3 people: 2 of 4 have more than 2 usable images"):
        split_identities(names, enrolled=3, per_person=2)


def test_split_by_session_enrolls_from_one_and_probes_with_the_other():
    names = ["a"] * 4 + ["b"] * 4
    session_a = [True, True, False, False] * 2
    found = [True] * 7 + [False]
    split = split_identities(names, enrolled=1, per_person=2, seed=0, usable=found, enroll_only=session_a)
    person = split.enrolled[0]
    assert sorted(names[i] for i in split.gallery) == [person, person]
    assert all(session_a[i] for i in split.gallery)
    owner_probes = [i for i, t in zip(split.probes, split.truth) if t is not None]
    assert owner_probes and not any(session_a[i] for i in owner_probes)
    assert len([t for t in split.truth if t is None]) == 4  # the stranger is probed with both sessions


def test_identification_counts_follow_the_banded_decision():
    matches = [Match("a", 0.9), Match("b", 0.8), Match(None, 0.1), Match("a", 0.5, uncertain=True),
               Match("a", 0.7), Match("b", 0.5, uncertain=True), Match(None, 0.2), None]
    c = identification_counts(matches, ["a", "a", "b", "a", None, None, None, None])
    assert c.as_json() == {"owners": {"total": 4, "named": 1, "misnamed": 1, "uncertain": 1, "unknown": 1},
                           "strangers": {"total": 3, "accepted": 1, "uncertain": 1, "unknown": 1}, "no_face": 1}
    assert (c + c).as_json()["owners"]["total"] == 8


def test_second_look_settles_the_uncertain_with_another_photo_of_the_same_person():
    names = ["a", "a", "a", "b", "b", "c"]
    split = IdentifySplit(gallery=[0], probes=[1, 2, 3, 4, 5], truth=["a", "a", None, None, None], enrolled=["a"])
    looks = second_looks(split, names, [True, True, True, True, False, True], seed=0)
    assert looks == [1, 0, None, 2, None]  # b's other photo has no face; c has no other photo
    first = [Match("a", 0.5, uncertain=True), Match("a", 0.9), Match("a", 0.5, uncertain=True), None,
             Match("a", 0.4, uncertain=True)]
    # a's uncertain look is settled by a's named one; b's second look is uncertain too (fail safe: unknown); c has
    # no other photo to look at (unknown); a no-face probe stays undecided.
    assert after_second_look(first, [1, 0, 0, None, None]) == [Match("a", 0.9), Match("a", 0.9), Match(None, 0.5),
                                                               None, Match(None, 0.4)]
    with pytest.raises(ValueError):
        after_second_look(first, [1])


def test_identity_images_lists_people_and_refuses_an_empty_folder(tmp_path):
    keys, names = identity_images(need(DATA / "five_celebrity" / "train"))
    assert len(keys) == 88 and sorted(set(names)) == ["ben_afflek", "elton_john", "jerry_seinfeld", "madonna",
                                                      "mindy_kaling"]
    assert keys[0].startswith("ben_afflek/") and names.count("jerry_seinfeld") == 21
    with pytest.raises(ProtocolError, match="holds no <person>/<image> files"):
        identity_images(tmp_path)
    keys, names = identity_images(DATA / "five_celebrity" / "train", min_photos=21)
    assert sorted(set(names)) == ["jerry_seinfeld", "mindy_kaling"] and len(keys) == 42


# --- real data: identification on five_celebrity, one LFW fold, the commands -------------------------------

CACHE = REPO / ".cache" / "eval"  # cached boxes/embeddings shared with `facewatch eval ... --cache .cache/eval`


def real_embeddings(face_pipeline, root: Path, keys: list[str]) -> DatasetEmbeddings:
    """The daemon's face pass (margin CROP_MARGIN) over `keys`, cached in the repo's .cache/eval."""
    from facewatch.commands.eval import detector_id
    from facewatch.config import load_config
    from facewatch.identity.pipeline import CROP_MARGIN

    return embed_dataset(root, keys, face_pipeline.detector, face_pipeline.embedder, model_id="casia-webface",
                         detector_id=detector_id(load_config().face, "torch"), margin=CROP_MARGIN, cache_dir=CACHE)


def test_identification_on_five_celebrity_cosine_and_siamese(face_pipeline):
    from facewatch.identity.matching import (
        COSINE_THRESHOLDS,
        CosineMatcher,
        SiameseMatcher,
        decide,
    )

    root = need(DATA / "five_celebrity" / "train")
    keys, names = identity_images(root)
    emb = real_embeddings(face_pipeline, root, keys)
    assert emb.no_face == ["madonna/httpssmediacacheakpinimgcomxffeabacaaejpg.jpg",
                           "madonna/httpssvagalumecommadonnaimagesmadonnajpg.jpg"]
    vectors = emb.vectors()[emb.rows(keys)]
    split = split_identities(names, enrolled=2, per_person=3, seed=0)
    assert split.enrolled == ["madonna", "mindy_kaling"]
    gallery_names = [names[i] for i in split.gallery]
    counts = {}
    for label, matcher in (("cosine", CosineMatcher(COSINE_THRESHOLDS["casia-webface"])),
                           ("siamese", SiameseMatcher.shipped("casia-webface"))):
        c = identification_counts(decide(matcher, vectors[split.probes], vectors[split.gallery], gallery_names),
                                  split.truth)
        counts[label] = (c.named, c.misnamed, c.owners_unknown, c.owners, c.accepted, c.strangers)
    assert counts == {"cosine": (30, 0, 3, 33, 0, 49), "siamese": (32, 0, 1, 33, 0, 49)}


def test_lfw_fold_1_at_the_shipped_threshold(face_pipeline):
    """Fold 1 end to end (807 images; about a minute the first time, then cached): the shipped cosine threshold
    decides its 600 pairs as the 10-fold run did."""
    from facewatch.identity.matching import COSINE_THRESHOLDS

    lfw = need(DATA / "lfw")
    pairs = read_pairs(lfw / "pairs.txt")
    fold1 = pairs.fold == 0
    first = [k for k, f in zip(pairs.first, fold1) if f]
    second = [k for k, f in zip(pairs.second, fold1) if f]
    emb = real_embeddings(face_pipeline, lfw / "lfw-deepfunneled", sorted(set(first + second)))
    vectors = emb.vectors()
    scores = fold_scores(vectors[emb.rows(first)], vectors[emb.rows(second)], np.zeros(600, int))[0]
    same = pairs.same[fold1]
    correct = int(np.sum((scores >= COSINE_THRESHOLDS["casia-webface"]) == same))
    print(f"\nLFW fold 1: {correct}/600 right at {COSINE_THRESHOLDS['casia-webface']}, "
          f"{len(emb.no_face)} of {len(emb.keys)} images without a face")
    assert (len(emb.keys), len(emb.no_face)) == (807, 0)
    assert correct == 589  # 98.2 %, fold 1's accuracy in the 10-fold run
    print(f'mean cosine same {scores[same].mean():.4f}, different {scores[~same].mean():.4f}')
    assert scores[same].mean() > 0.6 and scores[~same].mean() < 0.1


def tiny_lfw(tmp_path: Path) -> Path:
    """An LFW-shaped folder: 2 folds x (2 same + 2 different) real pairs, images linked from ../shared."""
    lines = need(DATA / "lfw" / "pairs.txt").read_text().splitlines()
    chosen = lines[1:3] + lines[301:303] + lines[601:603] + lines[901:903]
    root = tmp_path / "lfw"
    root.mkdir()
    (root / "pairs.txt").write_text("2\t2\n" + "\n".join(chosen) + "\n")
    (root / "lfw-deepfunneled").symlink_to(DATA / "lfw" / "lfw-deepfunneled")
    return root


@pytest.mark.torch
def test_eval_lfw_command_prints_the_protocol_and_writes_the_roc(tmp_path, model_dirs, monkeypatch, capsys):
    from facewatch.cli import main

    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    roc = tmp_path / "roc.png"
    code = main(["eval", "lfw", "--data", str(tiny_lfw(tmp_path)), "--roc", str(roc), "--cache", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert code == 0
    assert "LFW: 8 pairs in 2 folds, 13 images" in out
    assert "setting: casia-webface, margin 32, no mirror, cosine" in out
    assert "accuracy: 100.00 ± 0.00 % (2-fold; per fold: 100.0 100.0)" in out
    assert "no face found: 0 of 13 images" in out
    assert roc.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.torch
def test_eval_commands_report_bad_input_in_one_line(tmp_path, capsys):
    from facewatch.cli import main

    assert main(["eval", "lfw", "--data", str(tmp_path)]) == 2
    assert f"facewatch: error: {tmp_path / 'pairs.txt'}: cannot be read" in capsys.readouterr().err
    assert main(["eval", "identify", "--data", str(tmp_path)]) == 2
    assert "holds no <person>/<image> files" in capsys.readouterr().err
    root = need(DATA / "five_celebrity" / "train")
    assert main(["eval", "identify", "--data", str(root), "--enrolled", "6"]) == 2
    assert "cannot enroll 6 people: 5 of 5 have more than 5 usable images" in capsys.readouterr().err


@pytest.mark.torch
def test_eval_identify_runs_the_daemons_calibrated_decision(model_dirs, monkeypatch, capsys):
    """Seed 0 of five_celebrity: 2 people enrolled with 5 photos each, every other photo a probe, decided by the
    daemon's code (cohort calibration, T-norm, uncertain band, second look); --json prints one object per run."""
    import json

    from facewatch.cli import main
    from facewatch.engine import gallery_model_id

    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    keep = reuse_cohort_embeddings(gallery_model_id("casia-webface"))
    args = ["eval", "identify", "--cache", str(CACHE), "--data", str(need(DATA / "five_celebrity" / "train"))]
    assert main([*args, "--json", "--seeds", "2"]) == 0
    keep()
    runs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    strangers = {"strangers": {"total": 49, "accepted": 0, "uncertain": 0, "unknown": 49}, "no_face": 2}
    assert runs == [
        {"owners": {"total": 27, "named": 23, "misnamed": 0, "uncertain": 1, "unknown": 3}, **strangers,
         "after_second_look": {"owners": {"total": 27, "named": 24, "misnamed": 0, "uncertain": 0, "unknown": 3},
                               **strangers}},
        {"owners": {"total": 26, "named": 21, "misnamed": 0, "uncertain": 3, "unknown": 2},
         "strangers": {"total": 50, "accepted": 0, "uncertain": 0, "unknown": 50}, "no_face": 2,
         "after_second_look": {"owners": {"total": 26, "named": 24, "misnamed": 0, "uncertain": 0, "unknown": 2},
                               "strangers": {"total": 50, "accepted": 0, "uncertain": 0, "unknown": 50},
                               "no_face": 2}},
    ]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-5:] == ["owners:    23/27 (85.2 %) named, 0/27 (0.0 %) misnamed, 1/27 (3.7 %) uncertain, "
                        "3/27 (11.1 %) unknown",
                        "strangers: 0/49 (0.0 %) accepted, 0/49 (0.0 %) uncertain, 49/49 (100.0 %) unknown; "
                        "no face: 2 probe(s)",
                        "after the second look at the uncertain (another photo of the same person; uncertain twice "
                        "= unknown):",
                        "  owners:    24/27 (88.9 %) named, 0/27 (0.0 %) misnamed, 3/27 (11.1 %) unknown",
                        "  strangers: 0/49 (0.0 %) accepted, 49/49 (100.0 %) unknown"]


@pytest.mark.torch
def test_train_siamese_command_writes_head_and_record(tmp_path, model_dirs, monkeypatch, capsys):
    import json

    from facewatch.cli import main
    from facewatch.identity.siamese import SiameseHead

    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    out = tmp_path / "out"
    code = main(["train-siamese", "--lfw", str(tiny_lfw(tmp_path)), "--out", str(out), "--epochs", "2",
                 "--cache", str(tmp_path / "c")])
    assert code == 0
    head = SiameseHead.load(out / "siamese_casia-webface.npz")
    record = json.loads((out / "siamese_casia-webface.json").read_text())
    assert head.w1.shape == (1024, 64)
    assert record["training"]["epochs"] == 2 and record["embedding"]["margin"] == 32
    assert record["split"]["trained_people"] == {"lfw-deepfunneled": "*"}
    assert set(record["metrics"]) == {"lfw_10fold"} and set(record["metrics"]["lfw_10fold"]) == {"siamese", "cosine"}
    assert record["metrics"]["lfw_10fold"]["cosine"]["accuracy_mean"] == 1.0
    assert "LFW 10-fold, cosine: 100.00 ± 0.00 %" in capsys.readouterr().out
