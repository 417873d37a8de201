"""The hostile-input corpus (issue 16): files planted in facewatch's own dirs and config, each attack run with its
outcome asserted: nothing outside the dirs touched, no hang (subprocess timeouts), bounded memory (RLIMIT_AS in
a subprocess), one line of message, and the user's data intact."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers.fakes import CountingEmbedder, WholeImageFace
from helpers.shared import REPO

from facewatch import paths
from facewatch.cli import main
from facewatch.config import ConfigError, load_config
from facewatch.events import EventLog, events_path, rotated_paths
from facewatch.identity.enroll import enroll_images
from facewatch.identity.gallery import load_gallery, person_dir
from facewatch.imageio import MAX_FILE_BYTES, ImageError, read_rgb


def child_env() -> dict[str, str]:
    """The environment for a child process: this test's isolated user dirs, this tree's code."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


def run_limited(code: str, *args: str, memory_mb: int = 1500, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python with its address space capped at `memory_mb` and a wall-clock timeout."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory_mb << 20}, {memory_mb << 20}))\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=timeout, env=child_env())


def cli_limited(*argv: str, memory_mb: int = 1500, timeout: float = 60) -> subprocess.CompletedProcess:
    """The facewatch command line under run_limited."""
    return run_limited("import sys; from facewatch.cli import main; sys.exit(main(sys.argv[1:]))", *argv,
                       memory_mb=memory_mb, timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (no traceback), without the "facewatch: error: " prefix."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("facewatch: error: "), done.stderr
    return lines[0].removeprefix("facewatch: error: ")


# ---------------------------------------------------------------------------------------------- state files


def test_a_symlink_at_the_event_log_is_refused_and_its_target_untouched(tmp_path, caplog):
    victim = tmp_path / "public.txt"
    victim.write_text("world-readable notes\n")
    paths.private_dir(paths.state_dir())
    events_path().symlink_to(victim)
    log = EventLog(events_path())
    with caplog.at_level(logging.WARNING):
        log.write("face_pass", identities=["ann"])
        log.write("face_pass", identities=["ann"])
    assert victim.read_text() == "world-readable notes\n"
    assert log.failed and log.last["identities"] == ["ann"]  # kept in memory, the loop goes on
    warnings = [r.getMessage() for r in caplog.records if r.name == "facewatch.events"]
    assert warnings == [f"event log {events_path()} not writable ({events_path()} is a symlink, not a regular file; "
                        "facewatch will not write through it (move it away)); events are kept in memory only"]


def test_a_write_through_write_private_never_follows_a_planted_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    target = paths.data_dir() / "gallery-casia-webface.json"
    paths.private_dir(target.parent)
    target.symlink_to(victim)
    with pytest.raises(paths.NotRegularFile, match="is a symlink, not a regular file"):
        paths.write_private(target, b"{}")
    assert victim.read_text() == "keep me\n" and target.is_symlink()


FIFO_WRITER = """
import os, signal, sys, time
from pathlib import Path
from facewatch.events import EventLog
signal.signal(signal.SIGTERM, lambda *_: sys.exit(15))
log = EventLog(Path(sys.argv[1]))
start = time.monotonic()
for n in range(100):
    log.write("count", count=n)
print(f"wrote {log.last['count']} failed={log.failed} in {time.monotonic() - start:.1f} s", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_a_fifo_at_the_event_log_never_blocks_the_loop_or_sigterm(tmp_path):
    fifo = tmp_path / "state" / "events.jsonl"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    done = run_limited(FIFO_WRITER, str(fifo), timeout=30)  # before the fix: blocked forever in open()
    assert done.stdout.startswith("wrote 99 failed=True") and done.returncode == 15, done.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # left as it was


def test_loose_modes_in_the_state_dir_are_tightened_with_a_warning(caplog):
    state = paths.state_dir()
    state.mkdir(parents=True)
    os.chmod(state, 0o777)
    events_path().write_text("")
    os.chmod(events_path(), 0o644)
    with caplog.at_level(logging.WARNING):
        EventLog(events_path()).write("started")
    assert stat.S_IMODE(state.stat().st_mode) == 0o700 and stat.S_IMODE(events_path().stat().st_mode) == 0o600
    assert [r.getMessage() for r in caplog.records if r.name == "facewatch.paths"] == [
        f"{state} had mode 777 (others could read it); tightened to 700",
        f"{events_path()} had mode 644 (others could read it); tightened to 600",
    ]


def test_the_event_log_is_capped_and_rotated(tmp_path):
    path = tmp_path / "state" / "events.jsonl"
    log = EventLog(path, max_bytes=2000, keep=2)
    for n in range(200):
        log.write("count", count=n, padding="x" * 40)
    log.close()
    log.write("count", count=200)
    log.close()
    assert [p.name for p in rotated_paths(path)] == ["events.jsonl.1", "events.jsonl.2"]
    assert all(p.stat().st_size <= 2100 for p in [path, *rotated_paths(path)])
    assert path.read_text().splitlines()[-1].endswith('"count":200}') and not log.failed
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in [path, *rotated_paths(path)])


# ---------------------------------------------------------------------------------------------- config files


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" YAML document: 9 aliases per level, 9**levels strings once expanded (~400 bytes)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\ncamera:\n  fps: *a{levels - 1}\n"


@pytest.mark.parametrize("name, text, message", [
    ("bomb.yaml", alias_bomb(), "line 7, column 30: invalid YAML: more than 50 aliases (*name); write the values out"),
    ("small bomb.yaml", "camera:\n  fps: [&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol], "
     + ", ".join(f"&a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 5)) + "]\n",
     'camera.fps = [["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol",...: must be a number > 0'),
    ("deep.yaml", "camera:\n  fps: " + "[" * 100_000 + "]" * 100_000 + "\n",
     "line 2, column 26: invalid YAML: nested more than 20 levels deep"),
    ("cycle.yaml", "camera:\n  fps: &x [*x]\n", "camera.fps = [[[[[[[[[...]]]]]]]]]: must be a number > 0"),
    ("long.yaml", "camera:\n  fps: " + "z" * 100_000 + "\n", f'camera.fps = "{"z" * 56}...: must be a number > 0'),
])
def test_hostile_yaml_is_one_line_in_bounded_time_and_memory(tmp_path, name, text, message):
    config = tmp_path / name
    config.write_text(text)
    done = cli_limited("--config", str(config), "list", memory_mb=600, timeout=60)  # was 6.3 GB and 85 s
    assert one_line_error(done) == f"{config}: {message}"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_special_files_as_config_are_refused_without_reading_them(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    done = cli_limited("--config", str(fifo), "list", memory_mb=600, timeout=30)  # was: hung forever
    assert one_line_error(done) == f"{fifo}: is a FIFO (named pipe), not a config file"
    done = cli_limited("--config", "/dev/zero", "list", memory_mb=600, timeout=30)  # was: read to MemoryError
    assert one_line_error(done) == "/dev/zero: is a character device, not a config file"
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(4 << 30)  # sparse: 4 GB claimed, nothing on disk
    done = cli_limited("--config", str(huge), "list", memory_mb=600, timeout=30)
    assert one_line_error(done) == f"{huge}: larger than 1024 KB; not a facewatch config file"


def test_paths_in_the_config_that_cannot_be_used_are_named(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text('model_dir: "~nouser_facewatch_test/m"\n')
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value) == f'{config}: model_dir = "~nouser_facewatch_test/m": must be a path whose ~user exists or null'
    photo_file = tmp_path / "photo.jpg"
    photo_file.write_bytes(b"not a folder")
    config.write_text("gallery:\n  dir: photo.jpg\n")  # beside the config
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value) == f'{config}: gallery.dir = "photo.jpg": must be a folder (this is a file) or null'


# ---------------------------------------------------------------------------------------------- images


def radiance_bomb(path: Path, width: int, height: int) -> None:
    """A Radiance HDR file of width x height, all one run-length-encoded colour: a few MB that OpenCV would
    decode into width*height*12 bytes. Pillow cannot read its header."""
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode()
    row = b"\x02\x02" + width.to_bytes(2, "big")
    for _ in range(4):  # each of R, G, B, E: runs of at most 127 equal bytes
        full, rest = divmod(width, 127)
        row += (b"\xff\x80" * full) + (bytes([128 + rest, 0x80]) if rest else b"")
    with open(path, "wb") as f:
        f.write(header)
        for _ in range(height):
            f.write(row)


def test_a_radiance_bomb_named_jpg_is_refused_without_decoding(tmp_path):
    bomb = tmp_path / "me.jpg"
    radiance_bomb(bomb, 8000, 8000)  # 64 Mpx: 768 MB once decoded as float RGB
    assert bomb.stat().st_size < 5_000_000
    done = run_limited("""
        import sys; from pathlib import Path
        from facewatch.imageio import ImageError, read_rgb
        try:
            read_rgb(Path(sys.argv[1]))
        except ImageError as exc:
            print(exc.reason)
    """, str(bomb), memory_mb=700, timeout=60)
    assert done.stdout == "not a readable image (truncated, corrupt or not an image format)\n", done.stderr


def test_opencv_enforces_the_pixel_limit_for_every_decoder():
    done = run_limited("""
        import facewatch, cv2, numpy as np
        ok, hdr = cv2.imencode(".hdr", np.zeros((7000, 7000, 3), np.float32))
        try:
            print(cv2.imdecode(hdr, cv2.IMREAD_UNCHANGED))
        except cv2.error as exc:
            print("refused" if "CV_IO_MAX_IMAGE_PIXELS" in str(exc) else exc)
    """, memory_mb=2500, timeout=60)
    assert done.stdout == "refused\n", done.stderr


def test_a_huge_sparse_photo_is_refused_before_reading(tmp_path):
    sparse = tmp_path / "sparse.jpg"
    with open(sparse, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(64 << 30)  # 64 GB claimed: `run` died with MemoryError reading it
    with pytest.raises(ImageError) as info:
        read_rgb(sparse)
    assert info.value.reason == f"file too large (68719 MB, over {MAX_FILE_BYTES // 1_000_000} MB)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_a_fifo_named_like_a_photo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "me.jpg"
    os.mkfifo(fifo)
    done = run_limited("""
        import sys; from pathlib import Path
        from facewatch.imageio import ImageError, read_rgb
        try:
            read_rgb(Path(sys.argv[1]))
        except ImageError as exc:
            print(exc)
    """, str(fifo), timeout=30)
    assert done.stdout == f"{fifo}: is a FIFO (named pipe), not an image file\n", done.stderr


# ---------------------------------------------------------------------------------------------- secrets


def test_stream_passwords_are_masked_in_log_lines(capsys):
    from facewatch.cli import _MaskSecrets

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_MaskSecrets())
    logger = logging.getLogger("facewatch.test_hostile")
    logger.addHandler(handler)
    try:
        logger.warning("watching %s (%d people enrolled)", "rtsp://admin:secret@127.0.0.1:9/x", 1)
        logger.warning("stream %s", "http://cam.local/video?user=admin&password=secret&fps=5")
    finally:
        logger.removeHandler(handler)
    assert capsys.readouterr().err == ("watching rtsp://admin:***@127.0.0.1:9/x (1 people enrolled)\n"
                                       "stream http://cam.local/video?user=admin&password=***&fps=5\n")


# ---------------------------------------------------------------------------------------------- the gallery


def noise_photo(path: Path, seed: int) -> Path:
    """A distinct, sharp, mid-grey JPEG: passes enrollment's quality checks with WholeImageFace."""
    import cv2

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rng.integers(60, 200, (64, 64, 3), dtype=np.uint8))
    return path


def test_forget_never_follows_a_link_out_of_the_gallery(tmp_path, capsys):
    originals = tmp_path / "MyPhotos"
    mine = [noise_photo(originals / f"{n}.jpg", n) for n in range(3)]
    before = {p: p.read_bytes() for p in mine}
    gallery = paths.data_dir() / "reference_faces"
    paths.private_dir(gallery)
    (gallery / "me").symlink_to(originals, target_is_directory=True)
    enroll_images(gallery / "ann", [noise_photo(tmp_path / "ann.jpg", 9)], WholeImageFace())
    assert main(["forget", "--yes"]) == 0  # was: deleted ~/MyPhotos, then NotADirectoryError half done
    out = capsys.readouterr().out
    assert {p: p.read_bytes() for p in mine} == before and (gallery / "me").is_symlink()
    assert f"kept {gallery / 'me'} (not written by facewatch)" in out.splitlines()
    assert not (gallery / "ann").exists()


def test_remove_deletes_only_what_facewatch_enrolled_and_says_exactly_that(tmp_path, capsys, monkeypatch):
    pictures = tmp_path / "Pictures"
    config = tmp_path / "c.yaml"
    config.write_text(f"gallery:\n  dir: {pictures}\n")
    holidays = pictures / "Holidays"
    theirs = [noise_photo(holidays / "beach.jpg", 1), holidays / "notes.txt", noise_photo(holidays / "raw" / "a.jpg", 2)]
    theirs[1].write_text("trip notes\n")
    before = {p: p.read_bytes() for p in theirs}
    assert main(["--config", str(config), "remove", "Holidays", "--yes"]) == 2  # was: the whole folder went
    assert capsys.readouterr().err == (f"facewatch: error: {holidays} holds no photo facewatch enrolled; nothing to "
                                       "remove (its files are yours)\n")
    [added] = enroll_images(holidays, [noise_photo(tmp_path / "me.jpg", 3)], WholeImageFace())
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert main(["--config", str(config), "remove", "Holidays"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "This deletes 1 photo(s) of Holidays that facewatch enrolled:",
        f"  {added.path}",
        f"and keeps 3 other item(s) in {holidays}: beach.jpg, notes.txt, raw",
        f"removed 1 photo(s) of Holidays; kept in {holidays}: beach.jpg, notes.txt, raw",
    ]
    assert {p: p.read_bytes() for p in theirs} == before and not added.path.exists()


def test_remove_on_a_symlinked_folder_is_one_line(tmp_path, capsys):
    gallery = paths.private_dir(paths.data_dir() / "reference_faces")
    elsewhere = tmp_path / "elsewhere"
    photo = noise_photo(elsewhere / "x.jpg", 1)
    (gallery / "bob").symlink_to(elsewhere, target_is_directory=True)
    assert main(["remove", "bob", "--yes"]) == 2
    assert capsys.readouterr().err == (f"facewatch: error: {gallery / 'bob'} is a link to another folder; facewatch "
                                       "deletes only folders it created (remove the link yourself)\n")
    assert photo.exists()


def test_remove_drops_the_persons_embeddings_from_the_cache_at_once(tmp_path, capsys):
    from facewatch.engine import gallery_cache_path

    gallery = paths.data_dir() / "reference_faces"
    for n, name in enumerate(["ann", "bob"]):
        enroll_images(gallery / name, [noise_photo(tmp_path / f"{name}.jpg", n)], WholeImageFace())
    cache = gallery_cache_path(load_config(), "casia-webface")
    load_gallery(gallery, CountingEmbedder(), cache, "casia-webface")
    assert len(json.loads(cache.read_text())["entries"]) == 2
    assert main(["remove", "ann", "--yes"]) == 0
    assert len(json.loads(cache.read_text())["entries"]) == 1  # no load needed: ann's embedding is gone


@pytest.mark.parametrize("tamper, problem", [
    (lambda v: [x * 50 for x in v], "length 50, not 1"),
    (lambda v: v[:3], "not a 512-value embedding"),
    (lambda v: [float("nan")] * 512, "not finite numbers"),
    (lambda v: "owner", "not a 512-value embedding"),
])
def test_a_tampered_cache_entry_is_re_embedded_never_used(tmp_path, caplog, tamper, problem):
    root, cache = tmp_path / "faces", tmp_path / "cache.json"
    photo = noise_photo(root / "owner" / "1.jpg", 1)
    embed = CountingEmbedder()
    clean = load_gallery(root, embed, cache, "m1").embeddings.copy()
    data = json.loads(cache.read_text())
    [entry] = data["entries"].values()
    entry["embedding"] = tamper(entry["embedding"])
    cache.write_text(json.dumps(data, allow_nan=True))
    with caplog.at_level(logging.WARNING):
        gallery = load_gallery(root, embed, cache, "m1")
    assert embed.calls == 2 and np.array_equal(gallery.embeddings, clean)  # embedded again, not used
    assert f"gallery cache entry of {photo} is bad ({problem}); embedding the photo again" in caplog.messages


def test_refused_photos_are_checked_again_when_the_detector_settings_change(tmp_path):
    root, cache = tmp_path / "faces", tmp_path / "cache.json"
    noise_photo(root / "ann" / "1.jpg", 1)
    settings = {"min_face_size": 40, "thresholds": [0.6, 0.7, 0.7], "min_probability": 0.9}
    assert load_gallery(root, lambda image: np.zeros((0, 512), np.float32), cache, "m1", settings).problems
    embed = CountingEmbedder()
    assert load_gallery(root, embed, cache, "m1", settings).problems and embed.calls == 0  # cached refusal
    gallery = load_gallery(root, embed, cache, "m1", {**settings, "min_face_size": 20})
    assert embed.calls == 1 and gallery.names == ["ann"]


def test_the_same_photo_is_embedded_once_and_under_two_names_names_nobody(tmp_path):
    import shutil

    root, cache = tmp_path / "faces", tmp_path / "cache.json"
    first = noise_photo(root / "ann" / "1.jpg", 1)
    for n in range(2, 40):
        shutil.copy(first, root / "ann" / f"{n}.jpg")
    embed = CountingEmbedder()
    assert len(load_gallery(root, embed, cache, "m1").names) == 39 and embed.calls == 1
    (root / "bob").mkdir()
    shutil.copy(first, root / "bob" / "1.jpg")
    gallery = load_gallery(root, embed, cache, "m1")
    assert gallery.names == [] and len(gallery.problems) == 40


# ---------------------------------------------------------------------------------------------- enrollment


@pytest.mark.parametrize("name, reason", [
    ("unknown", "reserved (facewatch uses it for a face that is nobody)"),
    ("Unverified", "reserved (facewatch uses it for a face that is nobody)"),
    ("eve\nalice: 5 photo(s)", "control or invisible characters"),
    ("bob\u202egnp.exe", "control or invisible characters"),
    ("z" * 300, "longer than 64 characters"),
])
def test_bad_names_are_refused_with_one_line(tmp_path, capsys, name, reason):
    code = main(["enroll", name, "--images", str(noise_photo(tmp_path / "x.jpg", 1))])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("facewatch: error: invalid person name ")
    assert err.endswith(f": {reason}\n") and not (paths.data_dir() / "reference_faces").exists()


def test_nfc_and_nfd_spellings_are_one_person(tmp_path):
    gallery = paths.data_dir() / "reference_faces"
    nfd = "zoe\u0308"
    assert person_dir(gallery, nfd) == person_dir(gallery, "zo\u00eb") == gallery / "zo\u00eb"


def test_the_same_photo_under_two_names_is_refused(tmp_path):
    gallery = paths.data_dir() / "reference_faces"
    photo = noise_photo(tmp_path / "me.jpg", 1)
    [ann] = enroll_images(gallery / "ann", [photo], WholeImageFace())
    [bob] = enroll_images(gallery / "bob", [photo], WholeImageFace())
    [again] = enroll_images(gallery / "ann", [photo], WholeImageFace())
    assert ann.path is not None and (bob.path, bob.reason) == (None, "the same photo is already enrolled as ann")
    assert (again.path, again.reason) == (None, "already enrolled")


CONCURRENT_ENROLL = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from helpers.fakes import WholeImageFace
from facewatch.identity.enroll import enroll_images
photos = sorted(Path(sys.argv[2]).glob("*.jpg"))
added = enroll_images(Path(sys.argv[1]), photos, WholeImageFace())
print(sum(a.path is not None for a in added))
"""


def test_two_enrolls_at_once_keep_every_photo(tmp_path):
    folder = paths.data_dir() / "reference_faces" / "ann"
    batches = []
    for b in range(2):
        for n in range(30):
            noise_photo(tmp_path / f"batch{b}" / f"shot-{n}.jpg", 100 * b + n)  # same file names in both
        batches.append(subprocess.Popen([sys.executable, "-c", CONCURRENT_ENROLL, str(folder), str(tmp_path / f"batch{b}"),
                                         str(REPO / "tests")], stdout=subprocess.PIPE, text=True, env=child_env()))
    added = [int(p.communicate(timeout=120)[0]) for p in batches]
    assert added == [30, 30] and len(list(folder.glob("*.jpg"))) == 60  # was: 120 "added", 108 on disk
    from facewatch.identity.enrolled import Record

    assert len(Record.load(folder.parent).photos) == 60


def test_a_second_writer_waits_then_refuses_with_one_line(tmp_path):
    from facewatch.identity.enrolled import GalleryBusy, writer

    root = tmp_path / "faces"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path\n"
                               "from facewatch.identity.enrolled import writer\n"
                               "with writer(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(30)",
                               str(root)], stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(GalleryBusy, match=f"is changing the gallery {root}; try again when it is done"):
            with writer(root, wait_s=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------------------------------------- model files


def test_a_built_model_without_its_hash_is_refused_and_stale_temp_files_swept(tmp_path, capsys):
    from facewatch.weights.registry import ModelError, record_hash, require, sweep_temp

    models = tmp_path / "models"
    models.mkdir()
    built = models / "facenet_casia-webface.onnx"
    built.write_bytes(b"weights" * 1000)  # as a kill -9 between the file and its sidecar leaves it
    stale = models / ".facenet_casia-webface.onnx.k2j3.tmp"
    stale.write_bytes(b"half")
    with pytest.raises(ModelError, match="has no recorded sha256 .*an interrupted build"):
        require(built.name, [models])
    record_hash(built)
    assert require(built.name, [models]) == built
    built.write_bytes(b"weights" * 10)  # truncated afterwards: `run` died with a ValueError traceback
    with pytest.raises(ModelError, match="is corrupt or not the expected file"):
        require(built.name, [models])
    assert sweep_temp(models) == [stale] and not stale.exists()


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root writes into read-only dirs")
def test_building_into_a_read_only_dir_is_one_line(tmp_path):
    from facewatch.weights.registry import ModelError, writable_dir

    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o500)
    with pytest.raises(ModelError, match="is not writable"):
        writable_dir([read_only])


def test_building_into_a_file_is_one_line(tmp_path, monkeypatch):
    target = tmp_path / "models"
    target.write_text("a file\n")
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", str(target))
    done = cli_limited("models", "build", timeout=120)
    assert one_line_error(done) == f"the model dir {target} is a file, not a folder; set model_dir to a folder"


# ---------------------------------------------------------------------------------------------- running


def test_the_lock_file_is_never_written_through_a_link(tmp_path, caplog):
    from facewatch.system.instance import InstanceLock, lock_path

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    paths.private_dir(lock_path().parent)
    lock_path().symlink_to(victim)
    with caplog.at_level(logging.WARNING):
        with InstanceLock():
            pass
    assert victim.read_text() == "precious\n"  # was: overwritten with the PID
    assert any("is a symlink, not a regular file" in m for m in caplog.messages)


@pytest.mark.parametrize("state", ["read-only", "a file"])
def test_dry_run_survives_a_state_dir_it_cannot_write(state, caplog):
    from facewatch.actions.dryrun import DryRunRecorder

    if state == "a file":
        paths.state_dir().parent.mkdir(parents=True, exist_ok=True)
        paths.state_dir().write_text("not a folder\n")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only dirs")
        paths.private_dir(paths.state_dir())
        os.chmod(paths.state_dir(), 0o500)
    recorder = DryRunRecorder(paths.state_dir() / "dry-run.jsonl")
    with caplog.at_level(logging.WARNING):
        assert recorder.lock("unknown face").ok  # was: a traceback at the first decision
        recorder.notify("facewatch", "onlooker")
    assert [e.action for e in recorder.entries] == ["lock", "notify"]
    assert sum("decisions are kept in memory only" in m for m in caplog.messages) == 1


@pytest.mark.parametrize("fps", ["nan", "-1", "inf", "0"])
def test_a_bad_fps_is_one_line(fps):
    done = cli_limited("run", "--fps", fps, "--source", "x.mp4", timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == f"facewatch run: error: argument --fps: must be a number > 0, got '{fps}'"


def test_a_long_gallery_load_reports_progress(tmp_path, caplog, monkeypatch):
    from facewatch.identity import gallery as gallery_module

    monkeypatch.setattr(gallery_module, "PROGRESS_EVERY_S", 0.0)
    root = tmp_path / "faces"
    for n in range(3):
        noise_photo(root / "ann" / f"{n}.jpg", n)
    seen = []
    with caplog.at_level(logging.INFO, logger="facewatch.identity.gallery"):
        load_gallery(root, CountingEmbedder(), tmp_path / "cache.json", "m1", progress=lambda *a: seen.append(a))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [m for m in caplog.messages if m.startswith("loading gallery")] == [
        "loading gallery: 1 of 3 photos", "loading gallery: 2 of 3 photos"]


# The real `facewatch run` command (lock, signals, event log, console logging) over a stand-in daemon: 200 blank
# frames, a person in each, no networks; the state dir is whatever the test planted.
PLANTED_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
from helpers.fakes import CountingFaces, FrameList, ScriptedPersons
from facewatch import app
from facewatch.cli import main
from facewatch.daemon import Daemon, Loop
from facewatch.events import EventLog, events_path
from facewatch.identity.gallery import Gallery
from facewatch.identity.matching import CosineMatcher
from facewatch.tracking.tracks import Tracker
from facewatch.tracking.trigger import CountTrigger

app.build_daemon = lambda config, source, **options: Daemon(Loop(
    source=FrameList(200, 50.0), person=ScriptedPersons([1] * 200), faces=CountingFaces(), gallery=Gallery(),
    matcher=CosineMatcher(0.4), trigger=CountTrigger(0.0, 0.0, 1000.0), tracker=Tracker(0.3, 0.2, 2.0),
    events=EventLog(events_path()), fps=50.0, active_fps=50.0))
sys.exit(main(["run", "--no-lock", "--source", sys.argv[2]]))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_run_with_a_linked_lock_and_a_fifo_event_log_watches_every_frame_and_masks_the_password(tmp_path):
    from facewatch.system.instance import lock_path

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    paths.private_dir(paths.state_dir())
    lock_path().symlink_to(victim)
    os.mkfifo(events_path())
    done = run_limited(PLANTED_RUN, str(REPO / "tests"), "rtsp://admin:secret@127.0.0.1:9/x", timeout=60)
    assert done.returncode == 0, done.stderr  # was: blocked in open() forever, deaf to SIGTERM
    assert "ended after 200 frames" in done.stderr and "secret" not in done.stderr + done.stdout
    assert "watching stream rtsp://admin:***@127.0.0.1:9/x" in done.stderr
    assert victim.read_text() == "precious\n" and stat.S_ISFIFO(events_path().lstat().st_mode)
    assert "Traceback" not in done.stderr


def test_a_planted_folder_name_cannot_fake_list_output(capsys):
    gallery = paths.private_dir(paths.data_dir() / "reference_faces")
    (gallery / "eve\n  alice: 5 photo(s)").mkdir()
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"gallery: {gallery}", "  'eve\\n  alice: 5 photo(s)': 0 photo(s)"]
