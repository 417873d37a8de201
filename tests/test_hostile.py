"""The hostile-input corpus (issue 16): files planted in facewatch's own dirs and config, each attack run with its
outcome asserted: nothing outside the dirs touched, no hang (subprocess timeouts), bounded memory (RLIMIT_AS in
a subprocess), one line of message, and the user's data intact."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.shared import REPO
from facewatch import paths
from facewatch.config import ConfigError, load_config
from facewatch.events import EventLog, events_path, rotated_paths
from facewatch.imageio import MAX_FILE_BYTES, ImageError, read_rgb

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def run_limited(code: str, *args: str, memory_mb: int = 1500, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python with its address space capped at `memory_mb` and a wall-clock timeout."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory_mb << 20}, {memory_mb << 20}))\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


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
