"""What facewatch wrote into a gallery, so that `forget` and `remove` delete only that, and one writer at a time.

 1. Every photo `enroll` writes is recorded in <data dir>/enrolled-<gallery id>.json (0600): its path in the
    gallery, the sha256 of the bytes written and of the photo it came from.
 2. A photo is facewatch's to delete when it is recorded and its bytes still match, or when it sits in the
    default gallery (inside facewatch's data dir, which only facewatch writes); never anything reached through
    a link, never a file in a gallery.dir folder (~/Pictures) that facewatch did not write.
 3. One writer of a gallery at a time: `writer(root)` holds an OS lock for the whole enroll or remove; a second
    one waits up to WAIT_S, then refuses with one line. Nothing is overwritten either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from facewatch import paths
from facewatch.imageio import IMAGE_SUFFIXES

RECORD_VERSION = 1
_ENROLL_TEMP = re.compile(r"^\..+\.jpg\.[a-z0-9_]+\.tmp$")  # mkstemp's random part: lowercase, digits, _
MAX_RECORD_BYTES = 64 * 1024 * 1024
WAIT_S = 30.0


class GalleryBusy(Exception):
    """Another facewatch process is writing this gallery; the message says which and what to do."""


def gallery_id(root: Path) -> str:
    """A short stable id of a gallery folder, from its absolute path."""
    return hashlib.sha256(str(root.expanduser().absolute()).encode("utf-8")).hexdigest()[:16]


def record_path(root: Path) -> Path:
    """Rule 1: where the record of the photos facewatch wrote into `root` lives."""
    return paths.data_dir() / f"enrolled-{gallery_id(root)}.json"


def is_default_gallery(root: Path) -> bool:
    """True for the gallery inside facewatch's own data dir (rule 2)."""
    return root.expanduser().absolute() == (paths.data_dir() / "reference_faces").absolute()


def file_sha256(data: bytes) -> str:
    """The content hash the record and the gallery cache key photos by."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Record:
    """The photos facewatch wrote into one gallery: "<name>/<file>" -> {"sha256": written, "source": original}."""

    root: Path
    photos: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> Record:
        """The record of `root`; a missing, unreadable or malformed record holds nothing (so nothing is deleted)."""
        try:
            data = json.loads(paths.read_regular(record_path(root), MAX_RECORD_BYTES).decode("utf-8"))
            photos = data["photos"] if data.get("version") == RECORD_VERSION else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            photos = {}
        good = {k: v for k, v in photos.items() if isinstance(v, dict) and isinstance(v.get("sha256"), str)}
        return cls(root, good)

    def save(self) -> None:
        """Write the record atomically, 0600 (it names people)."""
        payload = {"version": RECORD_VERSION, "gallery": str(self.root), "photos": self.photos}
        paths.write_private(record_path(self.root), json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def add(self, photo: Path, written: str, source: str) -> None:
        """Note a photo just written (its hashes); saved by save()."""
        self.photos[_key(self.root, photo)] = {"sha256": written, "source": source}

    def drop(self, photos: list[Path]) -> None:
        """Forget photos just deleted."""
        for photo in photos:
            self.photos.pop(_key(self.root, photo), None)

    def enrolled_as(self, source: str) -> str | None:
        """The name a photo with these source bytes (or these written bytes) is enrolled under, or None."""
        for key, entry in self.photos.items():
            if source in (entry.get("source"), entry.get("sha256")):
                return key.split("/", 1)[0]
        return None

    def owned(self, person: Path) -> tuple[list[Path], list[Path]]:
        """Rule 2 for one person folder: (photos facewatch may delete, everything else in it, kept)."""
        if not _plain_dir(person):
            return [], []
        default = is_default_gallery(self.root)
        mine: list[Path] = []
        others: list[Path] = []
        for entry in sorted(person.iterdir()):
            ok = _plain_file(entry) and (
                self._matches(entry)
                or (default and entry.suffix.lower() in IMAGE_SUFFIXES)
                or _temp_of_write_private(entry))
            (mine if ok else others).append(entry)
        return mine, others

    def _matches(self, photo: Path) -> bool:
        """True when `photo` is recorded and still holds the bytes facewatch wrote."""
        entry = self.photos.get(_key(self.root, photo))
        if entry is None:
            return False
        try:
            return file_sha256(paths.read_regular(photo, MAX_RECORD_BYTES)) == entry["sha256"]
        except OSError:
            return False


def gallery_caches() -> list[Path]:
    """Every gallery embedding cache (one per FaceNet weight set), with write_private's leftover temp copies."""
    data = paths.data_dir()
    found = sorted(data.glob("gallery-*.json")) + sorted(data.glob(".gallery-*.json.*.tmp")) if data.is_dir() else []
    return [p for p in found if _plain_file(p)]


def delete_photos(photos: list[Path]) -> set[str]:
    """Delete photos `owned` returned; returns their content hashes (for the caches to drop)."""
    digests = set()
    for photo in photos:
        try:
            digests.add(file_sha256(paths.read_regular(photo, MAX_RECORD_BYTES)))
        except OSError:
            pass
        photo.unlink(missing_ok=True)
    return digests


def _key(root: Path, photo: Path) -> str:
    """A photo's record key: "<person>/<file>"."""
    return f"{photo.parent.name}/{photo.name}"


def _plain_dir(path: Path) -> bool:
    """A real folder, not a link to one (rule 2: deletion never follows a link out of the gallery)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _plain_file(path: Path) -> bool:
    """A regular file, not a link, FIFO or folder."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _temp_of_write_private(path: Path) -> bool:
    """A temp file paths.write_private leaves when enroll is killed mid-write (`.<photo>.jpg.<random>.tmp`)."""
    return _ENROLL_TEMP.match(path.name) is not None


@contextlib.contextmanager
def writer(root: Path, wait_s: float = WAIT_S) -> Iterator[None]:
    """Rule 3: hold the gallery's writer lock for the block (waiting up to `wait_s`), else GalleryBusy."""
    from facewatch.system.instance import AlreadyRunning, InstanceLock

    lock = InstanceLock(paths.state_dir() / f"gallery-{gallery_id(root)}.lock")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lock.acquire()
            break
        except AlreadyRunning as exc:
            if time.monotonic() >= deadline:
                raise GalleryBusy(f"another facewatch (pid {exc.pid or 'unknown'}) is changing the gallery {root}; "
                                  "try again when it is done") from None
            time.sleep(0.2)
    try:
        yield
    finally:
        lock.release()
