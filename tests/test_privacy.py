"""Privacy: no network at all, user-only files, no face image written while watching, and `forget` wipes it all."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.fakes import CountingEmbedder
from helpers.shared import EXAMPLES, HAVE_TORCH, REPO, need

from facewatch import paths
from facewatch.cli import main
from facewatch.config import load_config
from facewatch.engine import gallery_cache_path
from facewatch.events import EventLog, events_path
from facewatch.identity.cohort import cohort_cache_path
from facewatch.identity.enrolled import Record, record_path
from facewatch.identity.gallery import load_gallery
from facewatch.system.instance import InstanceLock, lock_path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm", ".ppm", ".tif", ".tiff"}

# Blocks the network in this process before anything is imported, records every attempt (by monkeypatching
# the socket module and, for anything that holds the originals, by an audit hook), then runs the CLI.
# Creating or binding a socket is not an attempt: urllib3 binds one to ::1 at import to probe for IPv6.
NO_NETWORK = r"""
import json, socket, sys
attempts = []
OUTWARD = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
           "socket.gethostbyaddr"}

def refuse(name):
    def blocked(*args, **kwargs):
        attempts.append(f"{name}{args[1:2] if name.startswith('socket.') else args[:1]}")
        raise OSError(f"network blocked by the privacy test: {name}")
    return blocked

for name in ("connect", "connect_ex", "sendto", "sendmsg"):
    setattr(socket.socket, name, refuse(f"socket.{name}"))
for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "create_connection"):
    setattr(socket, name, refuse(name))
sys.addaudithook(lambda event, args: event in OUTWARD and attempts.append(f"audit {event} {args[1:2]}"))
try:
    from facewatch.cli import main
    code = main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as f:
        json.dump(attempts, f)
sys.exit(code)
"""


def files_under(root: Path) -> set[str]:
    """Relative paths of every file under `root`."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def mode(path: Path) -> str:
    """The permission bits of `path` as "0o600"."""
    return oct(stat.S_IMODE(path.stat().st_mode))


@pytest.mark.torch
def test_a_replay_with_every_socket_blocked_works_attempts_nothing_and_writes_no_image(tmp_path, model_dirs):
    clip = need(EXAMPLES / "short_hamilton_clip.mp4")
    home, user_home, cwd = tmp_path / "facewatch home", tmp_path / "home", tmp_path / "cwd"
    for folder in (user_home, cwd):
        folder.mkdir()
    config = home / "config" / "config.yaml"
    paths.private_dir(config.parent)
    # casia-webface: the offline FaceNet weights (see the xfail test below for what "auto" does)
    config.write_text("person:\n  model: yolo11n_int8_320.onnx\nembedding:\n  weights: casia-webface\n")
    person = paths.private_dir(home / "data" / "reference_faces" / "lin-manuel-miranda")
    shutil.copy(EXAMPLES / "lin-manuel-miranda.png", person)
    before = files_under(home)
    attempts = tmp_path / "attempts.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FACEWATCH_HOME": str(home), "HOME": str(user_home),
           "FACEWATCH_MODEL_DIR": model_dirs}
    env.pop("XDG_CONFIG_HOME", None)
    done = subprocess.run([sys.executable, "-c", NO_NETWORK, str(attempts), "--config", str(config), "run",
                           "--source", str(clip), "--no-lock"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(attempts.read_text()) == []  # not one connect, DNS lookup or datagram
    events = [json.loads(line) for line in (home / "state" / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "ended"
    assert any("lin-manuel-miranda" in e.get("identities", []) for e in events)  # the run did its job offline
    # Nothing but the event log, the embedding cache, the owner's calibration, the embedded cohort and the lock
    # file; no image anywhere, not even in the cwd.
    created = {"state/events.jsonl", "state/facewatch.lock", "data/gallery-casia-webface.json",
               "state/dry-run.jsonl", "data/calibration-casia-webface-margin32-light1.json",
               "cache/cohort-casia-webface-margin32-light1.npz"}
    assert files_under(home) - before == created and files_under(cwd) == set()
    # ultralytics' own settings (no facewatch data); no ONNX Runtime telemetry queue or device id under ~/.cache
    assert files_under(user_home) == {".config/Ultralytics/settings.json"}
    for name in created:
        assert mode(home / name) == "0o600", name
    assert mode(home / "state") == "0o700"


@pytest.mark.torch
def test_the_default_facenet_choice_attempts_no_download(model_dirs, monkeypatch, tmp_path):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network blocked by the privacy test")

    monkeypatch.setattr("socket.create_connection", refuse)
    monkeypatch.setattr("socket.getaddrinfo", refuse)
    monkeypatch.setattr("socket.socket.connect", refuse)
    monkeypatch.setenv("FACEWATCH_MODEL_DIR", model_dirs)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no vggface2 weights cached
    from facewatch.engine import load_facenet

    assert load_facenet(load_config(), "torch").weights == "casia-webface"
    assert attempts == []


@pytest.mark.slow  # enroll runs MTCNN, converts FaceNet and embeds the cohort
def test_everything_stored_is_user_only():
    photo = need(EXAMPLES / "obama.jpg")
    assert main(["enroll", "barack", "--images", str(photo)]) == 0
    config = load_config()
    gallery = config.gallery_dir
    load_gallery(gallery, CountingEmbedder(), gallery_cache_path(config, "casia-webface"), "casia-webface")
    EventLog(events_path()).write("test")
    InstanceLock().acquire().release()
    home = Path(os.environ["FACEWATCH_HOME"])
    files = {str(p.relative_to(home)): mode(p) for p in home.rglob("*") if p.is_file()}
    dirs = {str(p.relative_to(home)): mode(p) for p in home.rglob("*") if p.is_dir()}
    gallery_id = record_path(gallery).stem.removeprefix("enrolled-")
    expected = {"data/reference_faces/barack/obama.jpg": "0o600", "data/gallery-casia-webface.json": "0o600",
                f"data/enrolled-{gallery_id}.json": "0o600", f"state/gallery-{gallery_id}.lock": "0o600",
                "state/events.jsonl": "0o600", "state/facewatch.lock": "0o600"}
    expected_dirs = {"data": "0o700", "data/reference_faces": "0o700", "data/reference_faces/barack": "0o700",
                     "state": "0o700"}
    if HAVE_TORCH:  # enroll then reports the calibration: FaceNet converted into the default model dir, the
        # cohort embedded once, and the per-person calibration (it names barack). The light install has no FaceNet
        # built in this fresh home, so it says calibration waits for `facewatch models build`.
        expected |= {"cache/models/facenet_casia-webface.pt": "0o600",
                     "cache/models/facenet_casia-webface.pt.sha256": "0o600",
                     "cache/cohort-casia-webface-margin32-light1.npz": "0o600",
                     "data/calibration-casia-webface-margin32-light1.json": "0o600"}
        expected_dirs |= {"cache": "0o700", "cache/models": "0o700"}
    assert files == expected
    assert dirs == expected_dirs


# --- facewatch forget ----------------------------------------------------------------------------------------


def digest(*files: Path) -> dict[str, str]:
    """sha256 per file, to show a file was not touched."""
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture
def stored(tmp_path) -> dict[str, Path]:
    """A user with a config (gallery in a folder of their choice), two people enrolled, caches for two weight
    sets, a temp file left by a kill mid-write, an event log, a model file and a note beside the photos."""
    gallery = tmp_path / "my faces"
    config = tmp_path / "config.yaml"
    config.write_text(f"gallery:\n  dir: {gallery}\n")
    record = Record(gallery)  # what `enroll` keeps: forget deletes only the photos it wrote
    for name, values in (("ann", (40, 50)), ("bob", (80,))):
        folder = paths.private_dir(gallery / name)
        for value in values:
            cv2.imwrite(str(folder / f"{value}.jpg"), np.full((40, 40, 3), value, np.uint8))
            written = hashlib.sha256((folder / f"{value}.jpg").read_bytes()).hexdigest()
            record.add(folder / f"{value}.jpg", written, written)
    record.save()
    (gallery / "bob" / "notes.txt").write_text("bob's photos are from the 2024 trip\n")
    cv2.imwrite(str(gallery / "bob" / "holiday.jpg"), np.full((40, 40, 3), 90, np.uint8))  # bob's, not enrolled
    (gallery / "ann" / ".50.jpg.x1y2.tmp").write_bytes(b"half a photo")
    cfg = load_config(config)
    for weights in ("casia-webface", "vggface2"):
        load_gallery(gallery, CountingEmbedder(), gallery_cache_path(cfg, weights), weights)
    leftover = paths.data_dir() / ".gallery-casia-webface.json.a1b2c3.tmp"
    leftover.write_text('{"version": 1, "entr')
    EventLog(events_path()).write("face_pass", identities=["ann"])
    paths.write_private(cohort_cache_path("casia-webface-margin32-v1"), b"embedded cohort")
    (paths.cache_dir() / ".cohort-vggface2-margin32-v1.npz.q9w8.tmp").write_bytes(b"half an embedded cohort")
    model = tmp_path / "models" / "yolo11n_int8_320.onnx"
    model.parent.mkdir()
    model.write_bytes(b"weights")
    InstanceLock().acquire().release()  # the lock file of an earlier run
    return {"config": config, "gallery": gallery, "model": model}


def forget(capsys, config: Path, *flags: str) -> tuple[int, str, str]:
    """`facewatch --config config forget flags`: exit code, stdout, stderr."""
    code = main(["--config", str(config), "forget", *flags])
    out, err = capsys.readouterr()
    return code, out, err


def test_forget_refuses_without_a_terminal_and_without_yes(stored, capsys):
    home = Path(os.environ["FACEWATCH_HOME"])
    before = files_under(home) | files_under(stored["gallery"])
    code, out, err = forget(capsys, stored["config"])
    assert (code, out, err) == (2, "", "facewatch: error: refusing to delete biometric data without "
                                      "confirmation; add --yes\n")
    assert files_under(home) | files_under(stored["gallery"]) == before


def test_forget_asks_first_and_a_no_keeps_everything(stored, capsys, monkeypatch):
    home = Path(os.environ["FACEWATCH_HOME"])
    before = files_under(home) | files_under(stored["gallery"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    questions = []
    monkeypatch.setattr("builtins.input", lambda prompt: questions.append(prompt) or "n")
    code, out, err = forget(capsys, stored["config"])
    data, gallery = paths.data_dir(), stored["gallery"]
    assert (code, questions) == (1, ["Delete all of it? [y/N] "])
    assert out.splitlines() == [
        "This permanently deletes:",
        f"  gallery cache {data / 'gallery-casia-webface.json'}",
        f"  gallery cache {data / 'gallery-vggface2.json'}",
        f"  gallery cache {data / '.gallery-casia-webface.json.a1b2c3.tmp'}",
        f"  3 enrolled photo(s) of ann in {gallery / 'ann'}",
        "      .50.jpg.x1y2.tmp",
        "      40.jpg",
        "      50.jpg",
        f"  1 enrolled photo(s) of bob in {gallery / 'bob'}",
        "      80.jpg",
        f"  event log {events_path()}",
        f"  cohort cache {cohort_cache_path('casia-webface-margin32-v1')}",
        f"  cohort cache {paths.cache_dir() / '.cohort-vggface2-margin32-v1.npz.q9w8.tmp'}",
        f"  enrollment record {record_path(gallery)}",
        "nothing deleted",
    ]
    assert files_under(home) | files_under(stored["gallery"]) == before


def test_forget_yes_wipes_the_biometric_data_and_nothing_else(stored, capsys, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("--yes must not ask"))
    kept = digest(stored["config"], stored["model"], stored["gallery"] / "bob" / "notes.txt")
    code, out, err = forget(capsys, stored["config"], "--yes")
    data, gallery = paths.data_dir(), stored["gallery"]
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"removed gallery cache {data / 'gallery-casia-webface.json'}",
        f"removed gallery cache {data / 'gallery-vggface2.json'}",
        f"removed gallery cache {data / '.gallery-casia-webface.json.a1b2c3.tmp'}",
        f"removed 3 photo(s) of ann and their folder {gallery / 'ann'}",
        f"removed 1 photo(s) of bob; kept in {gallery / 'bob'} (not written by facewatch): holiday.jpg, notes.txt",
        f"removed event log {events_path()}",
        f"removed cohort cache {cohort_cache_path('casia-webface-margin32-v1')}",
        f"removed cohort cache {paths.cache_dir() / '.cohort-vggface2-margin32-v1.npz.q9w8.tmp'}",
        f"removed enrollment record {record_path(gallery)}",
    ]
    assert digest(stored["config"], stored["model"], stored["gallery"] / "bob" / "notes.txt") == kept
    assert files_under(paths.data_dir()) == set() and not events_path().exists()
    assert files_under(gallery) == {"bob/notes.txt", "bob/holiday.jpg"}
    assert forget(capsys, stored["config"], "--yes") == (
        0, "nothing to forget: no gallery cache, enrolled photo or event log is stored\n"
           f"kept {gallery / 'bob'} (not written by facewatch)\n", "")


def test_forget_answered_yes_at_the_terminal(stored, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    code, out, err = forget(capsys, stored["config"])
    assert code == 0 and out.splitlines()[-1] == f"removed enrollment record {record_path(stored['gallery'])}"
    assert files_under(paths.data_dir()) == set()
    assert files_under(stored["gallery"]) == {"bob/notes.txt", "bob/holiday.jpg"}


def test_forget_refuses_while_facewatch_runs(stored, capsys):
    home = Path(os.environ["FACEWATCH_HOME"])
    before = files_under(home) | files_under(stored["gallery"])
    with InstanceLock():  # what a running `facewatch run` holds
        code, out, err = forget(capsys, stored["config"], "--yes")
    assert (code, out) == (2, "")
    assert err == (f"facewatch: error: facewatch is already running (pid {os.getpid()}): quit it first, "
                   f"it keeps the gallery in memory and writes the event log\n")
    assert files_under(home) | files_under(stored["gallery"]) == before
    assert lock_path().is_file()
