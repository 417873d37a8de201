"""Gallery: embeddings cached per file content (add/change/delete seen at the next load), bad photos named."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from helpers.fakes import CountingEmbedder
from helpers.shared import DATA, EXAMPLES, need

from facewatch.identity.enroll import enroll_from_frames, enroll_images
from facewatch.identity.gallery import load_gallery, person_dir
from facewatch.identity.matching import COSINE_THRESHOLDS, CosineMatcher
from facewatch.imageio import read_rgb


def photo(folder: Path, name: str, value: int) -> Path:
    """Write a small solid-colour PNG (a distinct fake 'photo' per value)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    cv2.imwrite(str(path), np.full((40, 40, 3), value, np.uint8))
    return path


def test_cache_sees_add_change_and_delete(tmp_path):
    root, cache = tmp_path / "faces", tmp_path / "cache.json"
    embed = CountingEmbedder()
    a = photo(root / "alice", "1.png", 10)
    photo(root / "bob", "1.png", 20)
    g = load_gallery(root, embed, cache, "m1")
    assert (g.names, embed.calls) == (["alice", "bob"], 2)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600

    load_gallery(root, embed, cache, "m1")
    assert embed.calls == 2  # nothing changed: all from the cache

    photo(root / "alice", "2.png", 30)  # add
    g = load_gallery(root, embed, cache, "m1")
    assert (g.names, embed.calls) == (["alice", "alice", "bob"], 3)

    photo(root / "alice", "1.png", 40)  # change the bytes of an existing file
    g = load_gallery(root, embed, cache, "m1")
    assert embed.calls == 4 and g.embeddings[0].argmax() == 40

    a.unlink()  # delete
    g = load_gallery(root, embed, cache, "m1")
    assert (g.names, embed.calls) == (["alice", "bob"], 4)
    assert len(json.loads(cache.read_text())["entries"]) == 2  # the deleted photo's entry is gone

    load_gallery(root, embed, cache, "other-model")  # other weights never reuse these embeddings
    assert embed.calls == 6


def test_corrupt_cache_is_rebuilt_not_trusted(tmp_path):
    root, cache = tmp_path / "faces", tmp_path / "cache.json"
    photo(root / "alice", "1.png", 10)
    cache.write_text("{not json")
    embed = CountingEmbedder()
    assert load_gallery(root, embed, cache, "m1").names == ["alice"]
    assert embed.calls == 1 and json.loads(cache.read_text())["model"] == "m1"


def test_person_names_must_be_plain_folder_names(tmp_path):
    assert person_dir(tmp_path, "alice") == tmp_path / "alice"
    for bad in ("", "..", "../evil", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="invalid person name"):
            person_dir(tmp_path, bad)


def test_bad_photos_are_reported_by_name_and_skipped(tmp_path, face_pipeline):
    root = tmp_path / "faces"
    person = root / "owner"
    person.mkdir(parents=True)
    shutil.copy(need(EXAMPLES / "obama.jpg"), person / "good.jpg")
    shutil.copy(EXAMPLES / "two_people.jpg", person / "two faces.jpg")
    (person / "empty.jpg").write_bytes(b"")
    (person / "truncated.jpg").write_bytes((EXAMPLES / "obama.jpg").read_bytes()[:300])
    (person / "notes.jpg").write_text("not an image")
    import cv2

    cv2.imwrite(str(person / "blank.png"), np.full((200, 200, 3), 128, np.uint8))
    g = load_gallery(root, face_pipeline.embeddings_only, tmp_path / "cache.json", "casia-webface")
    assert g.names == ["owner"] and g.files == [person / "good.jpg"]
    problems = sorted(g.problems)
    assert problems == sorted([
        f"{person / 'blank.png'}: no face found",
        f"{person / 'empty.jpg'}: empty file",
        f"{person / 'notes.jpg'}: not a readable image (truncated, corrupt or not an image format)",
        f"{person / 'truncated.jpg'}: not a readable image (truncated, corrupt or not an image format)",
        f"{person / 'two faces.jpg'}: 2 faces found, expected exactly one",
    ])


def test_enroll_five_celebrity_then_identify_its_test_photos(tmp_path, face_pipeline):
    """`enroll --images` each five_celebrity/train person, then name every test photo exactly."""
    data = need(DATA / "five_celebrity")
    root = tmp_path / "faces"
    people = sorted(p.name for p in (data / "train").iterdir())
    for name in people:
        added = enroll_images(root / name, sorted((data / "train" / name).iterdir()), face_pipeline.detector)
        assert sum(a.path is not None for a in added) >= 10, name
        assert all(stat.S_IMODE(a.path.stat().st_mode) == 0o600 for a in added if a.path)
    g = load_gallery(root, face_pipeline.embeddings_only, tmp_path / "cache.json", "casia-webface")
    assert g.people == people == ["ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"]
    results = {}
    for img in sorted((data / "test").glob("*/*")):
        found = face_pipeline.identify(read_rgb(img), g, CosineMatcher(COSINE_THRESHOLDS["casia-webface"]))
        results[f"{img.parent.name}/{img.name}"] = max(found, key=lambda f: f.face.score).match.name
    assert results == {
        "ben_afflek/ben.jpg": "ben_afflek", "elton_john/ej.jpg": "elton_john",
        "jerry_seinfeld/js.jpg": "jerry_seinfeld", "madonna/mad.jpg": "madonna", "mindy_kaling/mk.jpg": "mindy_kaling",
    }


def test_guided_capture_keeps_varied_clear_shots_of_one_face(tmp_path, face_pipeline):
    """enroll --from-camera's core on real footage: Lin-Manuel's close shots, kept only when he moved enough."""
    import cv2

    cap = cv2.VideoCapture(str(need(EXAMPLES / "short_hamilton_clip.mp4")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 82)
    frames = [cap.read()[1] for _ in range(0, 128)][::8]  # 16 frames over 4 s, as a camera at 7.5 fps
    cap.release()
    said = []
    added = enroll_from_frames(tmp_path / "lin", frames, face_pipeline.detector, count=3, say=said.append)
    assert [a.source for a in added] == ["camera"] * 3
    assert all(stat.S_IMODE(a.path.stat().st_mode) == 0o600 for a in added)
    assert said[-1] == "  shot 3/3 saved"
    photos = sorted((tmp_path / "lin").iterdir())
    assert len(photos) == 3
    refused = enroll_from_frames(tmp_path / "nobody", [np.full((360, 640, 3), 90, np.uint8)] * 4,
                                 face_pipeline.detector, count=2, say=said.append)
    assert refused == [] and said[-1] == "  waiting: no face found"
