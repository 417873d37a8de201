"""A corpus of bad input walked through the public entry points: every file and key is named in one clear line,
the exit code is 1 or 2, no traceback, and nothing the user had is deleted or changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.shared import DATA, EXAMPLES, HAVE_TORCH, REPO, need

from facewatch.cli import main
from facewatch.identity.gallery import load_gallery

UNREADABLE = "not a readable image (truncated, corrupt or not an image format)"


def huge_png(path: Path, width: int, height: int) -> None:
    """Write a valid black RGB PNG of width x height, streamed so the pixels never exist in memory here."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), bytes(1 + 3 * width)  # filter byte 0, then the row's RGB bytes
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def bad_photos(folder: Path) -> None:
    """Every kind of bad photo, plus one good one whose name has spaces and non-ASCII letters."""
    folder.mkdir(parents=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes((EXAMPLES / "obama.jpg").read_bytes()[:20_000])
    huge_png(folder / "huge.png", 12000, 12000)
    (folder / "notes.jpg").write_text("a text file named like a photo\n")
    (folder / "x.jpg").mkdir()  # a directory named like a photo
    (folder / "loop.jpg").symlink_to("loop.jpg")  # a symlink loop
    (folder / "dangling.jpg").symlink_to("moved away.jpg")
    ramp = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))
    cv2.imwrite(str(folder / "no face.png"), cv2.merge([ramp, ramp, ramp]))
    shutil.copy(DATA / "facenet_pytorch_samples" / "data" / "multiface.jpg", folder / "group.jpg")
    shutil.copy(EXAMPLES / "two_people.jpg", folder / "two people.jpg")
    shutil.copy(EXAMPLES / "obama.jpg", folder / "Zoë Ångström 1.jpg")
    (folder / "readme.txt").write_text("not a photo, not a photo suffix\n")


# Config files with one fault each, and the message that must name it (after "<file>: ").
BAD_CONFIGS = {
    "invalid ü.yaml": ("camera:\n  fps: [1, 2\n",
                       "line 3, column 1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    "wrong type.yaml": ("camera:\n  fps: fast\n", 'camera.fps = "fast": must be a number > 0'),
    "unknown key.yaml": ("camera:\n  fsp: 2\n", "unknown key camera.fsp (did you mean camera.fps?)"),
    "out of range.yaml": ("person:\n  confidence: 1.5\n", "person.confidence = 1.5: must be a number in [0, 1]"),
    "gallery type.yaml": ("gallery:\n  dir: 5\n", "gallery.dir = 5: must be a path or null"),
    "top list.yaml": ("- camera\n- fps\n",
                      "the top level must be a mapping of settings (key: value lines), got a list"),
    "duplicate.yaml": ("camera:\n  fps: 2\n  fps: 3\n", 'line 3, column 3: invalid YAML: duplicate key "fps"'),
    "utf16.yaml": ("camera:\n  fps: 2\n".encode("utf-16"), "not UTF-8 text (bad byte at offset 0)"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The corpus, built once under a folder whose name has a space and a non-ASCII letter; read-only for tests."""
    need(EXAMPLES)
    root = tmp_path_factory.mktemp("corpus") / "bad input ü"
    bad_photos(root / "photos")
    person = root / "my faces ü" / "zoë ångström"
    bad_photos(person)
    shutil.copy(EXAMPLES / "biden.jpg", person / "portrait 1.jpg")
    (root / "my faces ü" / "empty person").mkdir()
    (root / "my faces ü" / ".trash").mkdir()
    shutil.copy(EXAMPLES / "obama.jpg", root / "my faces ü" / ".trash" / "old.jpg")
    shutil.copy(EXAMPLES / "obama.jpg", root / "my faces ü" / "stray.jpg")  # not inside a person folder
    (root / "configs" / "dir.yaml").mkdir(parents=True)
    for name, (text, _) in BAD_CONFIGS.items():
        (root / "configs" / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    (root / "configs" / "good ü.yaml").write_text("gallery:\n  dir: ../my faces ü\n")  # relative to the file
    (root / "clip.mp4").write_text("not a video\n")
    return root


def listing(root: Path) -> dict[str, str]:
    """Every entry under `root` (symlinks not followed): file content hash, link target, or "dir"."""
    entries = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():
                entries[str(path)] = "-> " + os.readlink(path)
            elif path.is_dir():
                entries[str(path)] = "dir"
            else:
                entries[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def cli(capsys, caplog, *argv: str) -> tuple[int, str, str]:
    """Run `facewatch argv` in-process; the exit code, stdout and stderr. Never a traceback, printed or logged."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and not [r for r in caplog.records if r.exc_info]
    return code, out, err


@pytest.mark.slow
def test_the_corpus_through_the_command_line(corpus, tmp_path, capsys, caplog):
    before = listing(corpus)
    configs = corpus / "configs"
    # Every bad config: the file and the key named, exit 2, whichever command reads it.
    for name, (_, message) in BAD_CONFIGS.items():
        for command in (["list"], ["run", "--source", str(corpus / "clip.mp4")], ["forget", "--yes"]):
            code, out, err = cli(capsys, caplog, "--config", str(configs / name), *command)
            assert (code, err) == (2, f"facewatch: error: {configs / name}: {message}\n"), command
    code, out, err = cli(capsys, caplog, "--config", str(configs / "dir.yaml"), "list")
    assert (code, err) == (2, f"facewatch: error: {configs / 'dir.yaml'}: is a folder, not a config file\n")
    code, out, err = cli(capsys, caplog, "--config", str(configs / "missing.yaml"), "list")
    assert (code, err) == (2, f"facewatch: error: {configs / 'missing.yaml'}: config file not found "
                              f"(given with --config)\n")

    # A good config and gallery, both with spaces and non-ASCII letters in their paths.
    good = configs / "good ü.yaml"
    code, out, err = cli(capsys, caplog, "--config", str(good), "list")
    gallery = configs / ".." / "my faces ü"
    listed = f"gallery: {gallery}\n  empty person: 0 photo(s)\n  zoë ångström: 9 photo(s)\n"
    assert code == 0 and out.startswith(listed) and out[len(listed):].startswith("calibration")  # then each point

    # Videos that are not there or not videos: named, exit 2, before any network is loaded.
    code, out, err = cli(capsys, caplog, "--config", str(good), "run", "--source", str(corpus / "no such clip ü.mp4"))
    assert (code, err) == (2, f"facewatch: error: no video file at {corpus / 'no such clip ü.mp4'}\n")
    code, out, err = cli(capsys, caplog, "--config", str(good), "run", "--source", str(corpus / "clip.mp4"))
    assert (code, err) == (2, f"facewatch: error: cannot decode video {corpus / 'clip.mp4'} "
                              f"(not a video, or a codec OpenCV lacks)\n")

    # Enrollment from every bad photo (real MTCNN counts the faces): each refused by name, the good one kept.
    target = tmp_path / "enrolled ü"
    (tmp_path / "enroll.yaml").write_text(f"gallery:\n  dir: {target}\n")
    photos = corpus / "photos"
    names = ["empty.jpg", "truncated.jpg", "huge.png", "notes.jpg", "x.jpg", "loop.jpg", "dangling.jpg",
             "missing.jpg", "no face.png", "group.jpg", "two people.jpg", "readme.txt"]
    enroll = ["--config", str(tmp_path / "enroll.yaml"), "enroll"]
    code, out, err = cli(capsys, caplog, *enroll, "zoë", "--images", *(str(photos / n) for n in names))
    assert code == 1 and err == ""
    assert out.splitlines() == [
        f"  skipped {photos / 'empty.jpg'}: empty file",
        f"  skipped {photos / 'truncated.jpg'}: {UNREADABLE}",
        f"  skipped {photos / 'huge.png'}: image too large (12000x12000)",
        f"  skipped {photos / 'notes.jpg'}: {UNREADABLE}",
        f"  skipped {photos / 'x.jpg'}: is a folder, not an image file",
        f"  skipped {photos / 'loop.jpg'}: cannot be read (Too many levels of symbolic links)",
        f"  skipped {photos / 'dangling.jpg'}: cannot be read (No such file or directory)",
        f"  skipped {photos / 'missing.jpg'}: cannot be read (No such file or directory)",
        f"  skipped {photos / 'no face.png'}: no face found",
        f"  skipped {photos / 'group.jpg'}: 6 faces found, expected exactly one",
        f"  skipped {photos / 'two people.jpg'}: 2 faces found, expected exactly one",
        f"  skipped {photos / 'readme.txt'}: {UNREADABLE}",
        f"0 photo(s) enrolled for zoë in {target / 'zoë'}",
    ]
    code, out, err = cli(capsys, caplog, *enroll, "zoë", "--images", str(photos / "Zoë Ångström 1.jpg"))
    assert code == 0 and out.startswith(f"  added {target / 'zoë' / 'Zoë Ångström 1.jpg'}\n"
                                        f"1 photo(s) enrolled for zoë in {target / 'zoë'}\n")
    # The calibration report follows; the light install has no FaceNet built in this fresh home and says so.
    assert "  zoë: 1 photo(s) usable; named at >= " in out if HAVE_TORCH else \
        "calibration: not available yet: model file facenet_casia-webface.onnx not found" in out
    for name in ("../zoë", ".hidden", ""):
        code, out, err = cli(capsys, caplog, *enroll, name, "--images", str(photos / "Zoë Ångström 1.jpg"))
        assert code == 2 and err.startswith(f"facewatch: error: invalid person name {name!r}: use a plain name")

    assert listing(corpus) == before  # nothing deleted, nothing changed
    assert sorted(p.name for p in target.rglob("*")) == ["Zoë Ångström 1.jpg", "zoë"]


def test_load_gallery_names_every_refused_photo_and_keeps_the_rest(corpus, tmp_path, face_pipeline, caplog):
    before = listing(corpus)
    root = corpus / "my faces ü"
    person = root / "zoë ångström"
    gallery = load_gallery(root, face_pipeline.embeddings_only, tmp_path / "cache.json", "casia-webface")
    assert gallery.names == ["zoë ångström"] * 2
    assert gallery.files == [person / "Zoë Ångström 1.jpg", person / "portrait 1.jpg"]
    assert gallery.problems == [  # x.jpg (a folder), loop.jpg, dangling.jpg and readme.txt are not photos at all
        f"{person / 'empty.jpg'}: empty file",
        f"{person / 'group.jpg'}: 6 faces found, expected exactly one",
        f"{person / 'huge.png'}: image too large (12000x12000)",
        f"{person / 'no face.png'}: no face found",
        f"{person / 'notes.jpg'}: {UNREADABLE}",
        f"{person / 'truncated.jpg'}: {UNREADABLE}",
        f"{person / 'two people.jpg'}: 2 faces found, expected exactly one",
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "facewatch.identity.gallery"] == [
        f"gallery photo skipped: {p}" for p in gallery.problems]
    assert listing(corpus) == before


# Decodes the 12000x12000 PNG through read_rgb and prints the error and the peak memory growth in MB.
MEASURE = r"""
import resource, sys
from pathlib import Path
from facewatch.imageio import ImageError, read_rgb
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_rgb(Path(sys.argv[1]))
except ImageError as exc:
    print(exc.reason)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_huge_image_is_refused_from_its_header_without_decoding_it(corpus):
    huge = corpus / "photos" / "huge.png"
    assert huge.stat().st_size < 1_000_000  # 420 KB on disk, 432 MB of pixels once decoded
    done = subprocess.run([sys.executable, "-c", MEASURE, str(huge)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    reason, grown_mb = done.stdout.splitlines()
    assert reason == "image too large (12000x12000)"
    assert int(grown_mb) < 50, f"refusing the image grew the process by {grown_mb} MB"
