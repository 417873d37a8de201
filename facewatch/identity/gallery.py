"""The gallery: reference_faces/<name>/*.jpg turned into embeddings, cached per file content hash.

The cache is keyed by (embedding model, sha256 of the image bytes), so adding, changing or deleting a photo
is seen at the next load without anyone deleting a cache; it is written 0600 and atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from facewatch.identity.matching import OperatingPoint
from facewatch.imageio import ImageError, image_files, read_rgb
from facewatch.paths import write_private

log = logging.getLogger("facewatch.identity.gallery")

# Embeds every face of an RGB image: returns (N, D) unit-length embeddings, one row per face found.
EmbedFaces = Callable[[np.ndarray], np.ndarray]
CACHE_VERSION = 1


@dataclass
class Gallery:
    """Enrolled identities: one embedding row per usable photo, its person's name, and the photos refused."""

    names: list[str] = field(default_factory=list)
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 512), np.float32))
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Per-person decision scores (matching rule 2), set by identity/calibration.py; empty = uncalibrated.
    points: dict[str, OperatingPoint] = field(default_factory=dict)

    @property
    def people(self) -> list[str]:
        """Enrolled names that have at least one usable photo, sorted."""
        return sorted(set(self.names))


def person_dir(root: Path, name: str) -> Path:
    """The folder of one enrolled name; ValueError for a name that is not a plain folder name (no paths)."""
    if not name or name != Path(name).name or name in (".", "..") or name.startswith("."):
        raise ValueError(f"invalid person name {name!r}: use a plain name such as 'alice' (no slashes, no dot first)")
    return root / name


def people_dirs(root: Path) -> list[Path]:
    """The person folders of a gallery root (one per name), sorted; hidden folders skipped."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _file_hash(path: Path) -> str:
    """sha256 of a photo's bytes: the cache key that notices any change to the file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_cache(path: Path, model_id: str) -> dict[str, dict]:
    """Cached entries for this model; an unreadable or foreign cache is ignored (rebuilt), never trusted."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if data.get("version") != CACHE_VERSION or data.get("model") != model_id:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def face_count_problem(count: int) -> str | None:
    """Why a reference photo with `count` faces cannot be used (it must show exactly one), or None."""
    if count == 1:
        return None
    return "no face found" if count == 0 else f"{count} faces found, expected exactly one"


def _embed_file(path: Path, embed_faces: EmbedFaces) -> dict:
    """Cache entry for one photo: its embedding if it shows exactly one face, else why it was refused."""
    try:
        image = read_rgb(path)
    except ImageError as exc:
        return {"problem": exc.reason}
    embeddings = embed_faces(image)
    problem = face_count_problem(len(embeddings))
    if problem:
        return {"problem": problem}
    return {"embedding": [round(float(v), 7) for v in embeddings[0]]}


def load_gallery(root: Path, embed_faces: EmbedFaces, cache_path: Path, model_id: str) -> Gallery:
    """Embed every photo under `root` (reusing cached embeddings of unchanged files) and report refused photos."""
    cached = _read_cache(cache_path, model_id)
    fresh: dict[str, dict] = {}
    gallery = Gallery()
    rows = []
    for person in people_dirs(root):
        for photo in image_files(person):
            try:
                key = _file_hash(photo)
            except OSError as exc:
                gallery.problems.append(f"{photo}: cannot be read ({exc.strerror or exc})")
                continue
            entry = cached.get(key) or _embed_file(photo, embed_faces)
            fresh[key] = entry
            if "problem" in entry:
                gallery.problems.append(f"{photo}: {entry['problem']}")
                continue
            rows.append(entry["embedding"])
            gallery.names.append(person.name)
            gallery.files.append(photo)
    if rows:
        gallery.embeddings = np.asarray(rows, np.float32)
    for problem in gallery.problems:
        log.warning("gallery photo skipped: %s", problem)
    if fresh != cached:
        payload = {"version": CACHE_VERSION, "model": model_id, "entries": fresh}
        try:
            write_private(cache_path, json.dumps(payload).encode("utf-8"))
        except OSError as exc:  # disk full, read-only: the old cache stays intact, the next load embeds again
            log.warning("gallery cache %s not updated (%s); its photos are embedded again at the next start",
                        cache_path, exc.strerror or exc)
    return gallery
