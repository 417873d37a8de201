"""Per-owner calibration and the banded decision: rules on hand-made embeddings, the cohort's integrity checks,
the cache rebuilt when the gallery changes, and real enrollment photos calibrated against the shipped cohort."""

from __future__ import annotations

import json
import shutil
import stat
from statistics import NormalDist

import numpy as np
import pytest
from helpers.shared import DATA, EXAMPLES, need, reuse_cohort_embeddings

from facewatch.engine import gallery_model_id
from facewatch.identity import calibration, cohort
from facewatch.identity.calibration import (
    FAR_KNOWN,
    cached_calibration,
    calibrate,
    calibrate_gallery,
    calibrate_owner,
    calibration_path,
)
from facewatch.identity.gallery import Gallery, load_gallery
from facewatch.identity.matching import UNCALIBRATED, CosineMatcher, Match, OperatingPoint, decide


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def random_unit(n: int, seed: int, dim: int = 512) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(n, dim)))


def owner_photos(n: int, spread: float, seed: int) -> np.ndarray:
    """n photos of one made-up person: a shared direction plus per-photo noise of relative size `spread`."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=512)
    return unit(centre + spread * rng.normal(size=(n, 512)))


# --- decision (matching rules 1-4) ------------------------------------------------------------------------------


def test_decide_names_asks_again_or_refuses_by_each_persons_point():
    gallery = unit(np.eye(3, 512)[[0, 0, 1]])
    names = ["ann", "ann", "bob"]
    points = {"ann": OperatingPoint(0.8, 0.6), "bob": OperatingPoint(0.5, 0.4)}
    probes = unit([[1, 0.2] + [0] * 510, [1, 0.9] + [0] * 510, [1, 1.6] + [0] * 510, [0.3, 0, 1] + [0] * 509])
    matches = decide(CosineMatcher(), probes, gallery, names, points)
    assert [(m.name, m.uncertain) for m in matches] == [("ann", False), ("ann", True), ("bob", False),
                                                        (None, False)]
    assert matches[0].score == pytest.approx(0.9806, abs=1e-4)
    assert Match("x", 0.5) == Match("x", 0.5, uncertain=False)


def test_threshold_override_has_no_band_and_an_uncalibrated_person_is_held_strictest():
    gallery, names = unit(np.eye(2, 512)), ["ann", "bob"]
    probe = unit([[1, 0.9] + [0] * 510])  # cosine 0.743 to ann
    assert decide(CosineMatcher(0.7), probe, gallery, names, {"ann": OperatingPoint(0.9, 0.8)}) == [
        Match("ann", pytest.approx(0.7433, abs=1e-4))]
    only = decide(CosineMatcher(), probe, gallery, names, {})[0]
    assert UNCALIBRATED.known == 0.9 and (only.name, only.uncertain) == (None, False)


def test_a_probe_close_to_everyone_is_not_named_for_being_close_to_the_owner_too():
    """Matching rule 6 (T-norm): the same score names a probe that stands out from its cohort scores, and leaves
    one that scores as high against the strangers (a dim, grey face) uncertain."""
    gallery, names = unit(np.eye(1, 512)), ["ann"]
    point = {"ann": OperatingPoint(0.5, 0.3, probe_z=3.0)}
    probe = unit([[1, 1] + [0] * 510])  # 0.707 to ann
    rng = np.random.default_rng(0)
    apart = unit(np.concatenate([np.zeros((50, 2)), rng.normal(size=(50, 510))], axis=1))  # orthogonal to the probe
    alike = unit(np.concatenate([rng.normal(15, 3, size=(50, 2)), rng.normal(size=(50, 510))], axis=1))  # ~0.68
    assert decide(CosineMatcher(), probe, gallery, names, point, apart)[0] == Match("ann", pytest.approx(0.7071, abs=1e-4))
    assert decide(CosineMatcher(), probe, gallery, names, point, alike)[0].uncertain
    assert decide(CosineMatcher(), probe, gallery, names, point)[0].name == "ann"  # no cohort: the check is off
    assert decide(CosineMatcher(0.5), probe, gallery, names, point, alike)[0] == Match("ann", pytest.approx(0.7071, abs=1e-4))


# --- calibration rules ------------------------------------------------------------------------------------------


def test_owner_point_is_the_stricter_of_cohort_tail_and_share_of_genuine():
    strangers = random_unit(400, seed=1)
    tight = calibrate_owner("ann", owner_photos(5, 0.5, seed=2), strangers, CosineMatcher())
    loose = calibrate_owner("bob", owner_photos(5, 3.0, seed=3), strangers, CosineMatcher())
    for c in (tight, loose):
        assert c.unknown <= c.known and c.photos == 5 and c.strangers == 400
        assert c.cohort_accepted <= FAR_KNOWN
    # Photos that match each other closely (a tight camera domain) pull the point up with them (rule 3).
    assert tight.genuine > 0.75 and tight.known > 0.5
    assert loose.genuine < 0.2 and loose.known < 0.25
    assert tight.advice is None and loose.advice.startswith("poor separation")


def test_targets_hold_for_the_whole_gallery_so_each_of_n_people_gets_a_stricter_point():
    """Rule 1: a stranger is let in by passing any one person's point, so ten people share the 0.1 % out."""
    strangers = random_unit(400, seed=1)
    photos = owner_photos(5, 3.0, seed=3)  # loose photos: the cohort tail sets the point, not the share of rule 3
    alone = calibrate_owner("bob", photos, strangers, CosineMatcher())
    among_ten = calibrate_owner("bob", photos, strangers, CosineMatcher(), people=10)
    assert among_ten.known > alone.known and among_ten.unknown > alone.unknown
    two = Gallery(names=["ann"] * 5 + ["bob"] * 5, embeddings=np.concatenate([owner_photos(5, 3.0, seed=2), photos]))
    assert calibrate(two, strangers, CosineMatcher())["bob"] == calibrate_owner("bob", photos, strangers,
                                                                               CosineMatcher(), people=2)
    assert among_ten.probe_z == pytest.approx(NormalDist().inv_cdf(1 - FAR_KNOWN / 50), abs=1e-4)  # rule 7
    with pytest.raises(ValueError, match="people must be at least 1"):
        calibrate_owner("bob", photos, strangers, CosineMatcher(), people=0)


def test_one_photo_gets_the_strictest_point_and_a_warning_not_a_crash():
    c = calibrate_owner("ann", owner_photos(1, 0.5, seed=2), random_unit(400, seed=1), CosineMatcher())
    assert (c.genuine, c.refused, c.uncertain) == (None, None, None)
    assert c.known > 0.6  # genuine taken as 1.0 (rule 4)
    assert c.advice == "only one photo: the threshold is at its strictest; add 3-5 more photos"
    assert "one photo, no leave-one-out score" in calibration.describe(c)


def test_calibration_cache_is_rebuilt_when_a_photo_is_added_or_removed(tmp_path):
    strangers, path = random_unit(50, seed=1), tmp_path / "calibration.json"
    photos = owner_photos(4, 0.8, seed=5)
    three = Gallery(names=["ann"] * 3, embeddings=photos[:3])
    four = Gallery(names=["ann"] * 4, embeddings=photos)
    first = cached_calibration(three, strangers, "cohort-a", CosineMatcher(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["people"]["ann"]["photos"] == 3
    added = cached_calibration(four, strangers, "cohort-a", CosineMatcher(), path)
    assert added["ann"].photos == 4 and added["ann"] != first["ann"]
    assert cached_calibration(three, strangers, "cohort-a", CosineMatcher(), path) == first  # photo removed
    # A cache that claims another gallery's result under this key is never trusted.
    data = json.loads(path.read_text())
    data["people"]["ann"]["known"] = 0.01
    path.write_text(json.dumps({**data, "key": "forged"}))
    assert cached_calibration(three, strangers, "cohort-a", CosineMatcher(), path) == first
    path.write_text("{not json")
    assert cached_calibration(three, strangers, "cohort-b", CosineMatcher(), path) == calibrate(
        three, strangers, CosineMatcher())


# --- the shipped cohort ------------------------------------------------------------------------------------------


def test_shipped_cohort_matches_its_record():
    record = json.loads(cohort.COHORT_RECORD.read_text())
    crops = cohort.cohort_crops()
    assert crops.shape == (record["tiles"], 160, 160, 3) == (400, 160, 160, 3)
    assert len({f["person"] for f in record["faces"]}) == 400
    assert all(len(f["sha256"]) == 64 for f in record["faces"])
    assert record["crop"]["margin"] == 32


@pytest.mark.parametrize("damage, message, named", [
    (lambda image, record: image.write_bytes(image.read_bytes()[:-500]), "do not match the sha256", "image"),
    (lambda image, record: image.unlink(), "cannot be read", "image"),
    (lambda image, record: record.write_text("{"), "is missing or unreadable", "record"),
])
def test_a_damaged_cohort_is_one_clear_error_naming_the_file(tmp_path, monkeypatch, damage, message, named):
    image, record = tmp_path / "cohort_faces.jpg", tmp_path / "cohort_faces.json"
    shutil.copy(cohort.COHORT_IMAGE, image)
    shutil.copy(cohort.COHORT_RECORD, record)
    monkeypatch.setattr(cohort, "COHORT_IMAGE", image)
    monkeypatch.setattr(cohort, "COHORT_RECORD", record)
    damage(image, record)
    with pytest.raises(cohort.CohortError, match=message) as caught:
        cohort.cohort_embeddings(lambda crops: np.zeros((len(crops), 512)), "x", tmp_path / "cache.npz")
    assert str(image if named == "image" else record) in str(caught.value)
    assert "reinstall facewatch" in str(caught.value)


def test_cohort_embeddings_are_cached_per_embedding_id(tmp_path):
    calls = []

    def embed(crops):
        calls.append(len(crops))
        return np.ones((len(crops), 512), np.float32)

    cache = tmp_path / "cohort.npz"
    assert cohort.cohort_embeddings(embed, "a", cache).shape == (400, 512)
    assert cohort.cohort_embeddings(embed, "a", cache).shape == (400, 512)
    cohort.cohort_embeddings(embed, "b", cache)
    cache.write_bytes(b"garbage")
    cohort.cohort_embeddings(embed, "b", cache)
    assert calls == [400, 400, 400]


# --- real photos -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_gallery_is_calibrated_and_recalibrated_when_a_photo_changes(tmp_path, face_pipeline):
    """five_celebrity photos enrolled as a user would; the daemon's calibration follows the folder's content."""
    train = need(DATA / "five_celebrity" / "train")
    root = tmp_path / "faces"
    for name in ("madonna", "elton_john"):
        (root / name).mkdir(parents=True)
        for photo in sorted((train / name).iterdir())[:4]:
            shutil.copy(photo, root / name / photo.name)

    embedding_id = gallery_model_id("casia-webface")
    keep = reuse_cohort_embeddings(embedding_id)

    def load():
        g = load_gallery(root, face_pipeline.embeddings_only, tmp_path / "gallery.json", embedding_id)
        return g, calibrate_gallery(g, face_pipeline.embed_crops, embedding_id, CosineMatcher())

    gallery, before = load()
    keep()
    assert sorted(gallery.points) == ["elton_john", "madonna"]
    assert all(0.3 < c.unknown <= c.known < 0.9 for c in before.values())
    assert stat.S_IMODE(calibration_path(embedding_id).stat().st_mode) == 0o600
    extra = sorted((train / "madonna").iterdir())[4]
    shutil.copy(extra, root / "madonna" / extra.name)
    _, added = load()
    assert added["madonna"].photos == 5 and added["madonna"] != before["madonna"]
    assert added["elton_john"] == before["elton_john"]
    (root / "madonna" / extra.name).unlink()
    assert load()[1] == before


@pytest.mark.slow
def test_readme_sample_photo_is_enrollable_and_calibrated_with_a_one_photo_warning(tmp_path, face_pipeline):
    from facewatch.identity.enroll import enroll_images

    added = enroll_images(tmp_path / "faces" / "lin", [need(EXAMPLES / "lin-manuel-miranda.png")],
                          face_pipeline.detector)
    assert [a.reason for a in added] == [""] and added[0].path is not None
    embedding_id = gallery_model_id("casia-webface")
    reuse_cohort_embeddings(embedding_id)
    gallery = load_gallery(tmp_path / "faces", face_pipeline.embeddings_only, tmp_path / "g.json", embedding_id)
    result = calibrate_gallery(gallery, face_pipeline.embed_crops, embedding_id, CosineMatcher())
    assert result["lin"].photos == 1 and result["lin"].advice.startswith("only one photo")
