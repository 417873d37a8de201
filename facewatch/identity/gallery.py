"""The gallery: reference_faces/<name>/*.jpg turned into embeddings, cached per file content hash.

 1. The cache is keyed by (embedding model, detector settings face.*, sha256 of the image bytes), so adding,
    changing or deleting a photo, or changing what finds the faces, is seen at the next load without anyone
    deleting a cache; it is written 0600 and atomically.
 2. The cache is never trusted: an entry that is not a finite EMBEDDING_DIM vector of unit length (within
    NORM_TOLERANCE) is re-embedded from its photo, with a warning (a scaled entry once named strangers the owner).
 3. A photo's bytes are read once, bounded (imageio), hashed and decoded from the same bytes; the same bytes
    twice are embedded once, and under two names they name nobody (which person would they be?).
 4. Names are one line of printable text, NFC-normalised, at most MAX_NAME_CHARS, never a reserved word.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from facewatch.identity.matching import OperatingPoint
from facewatch.imageio import ImageError, decode_rgb, image_files, read_image_bytes
from facewatch.paths import read_regular, write_private

log = logging.getLogger("facewatch.identity.gallery")

# Embeds every face of an RGB image: returns (N, D) unit-length embeddings, one row per face found.
EmbedFaces = Callable[[np.ndarray], np.ndarray]
# Called after each photo with (photos done, photos in the gallery), for a progress display.
Progress = Callable[[int, int], None]
CACHE_VERSION = 2
EMBEDDING_DIM = 512
NORM_TOLERANCE = 1e-3
MAX_CACHE_BYTES = 256 * 1024 * 1024
MAX_NAME_CHARS = 64
RESERVED_NAMES = {"unknown", "unverified"}  # what the policy calls a face that is nobody / not yet checked
PROGRESS_EVERY_S = 5.0


@dataclass
class Gallery:
    """Enrolled identities: one embedding row per usable photo, its person's name, and the photos refused."""

    names: list[str] = field(default_factory=list)
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, EMBEDDING_DIM), np.float32))
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Per-person decision scores (matching rule 2), set by identity/calibration.py; empty = uncalibrated.
    points: dict[str, OperatingPoint] = field(default_factory=dict)
    # The impostor cohort's embeddings, set with `points`: the probe-side T-norm of matching rule 6.
    cohort: np.ndarray | None = None

    @property
    def people(self) -> list[str]:
        """Enrolled names that have at least one usable photo, sorted."""
        return sorted(set(self.names))


def clean_name(name: str) -> str:
    """Rule 4: the NFC form of an enrolled name; ValueError with one line for a name that cannot be one."""
    name = unicodedata.normalize("NFC", name)
    shown = repr(name if len(name) <= 40 else name[:37] + "...")
    if name != name.strip():
        raise ValueError(f"invalid person name {shown}: spaces at either end")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"invalid person name {shown}: longer than {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):  # newlines, escapes, bidi overrides
        raise ValueError(f"invalid person name {shown}: control or invisible characters")
    if name.casefold() in RESERVED_NAMES:
        raise ValueError(f"invalid person name {shown}: reserved (facewatch uses it for a face that is nobody)")
    if not name or name != Path(name).name or name in (".", "..") or name.startswith(".") or "\\" in name:
        raise ValueError(f"invalid person name {shown}: use a plain name such as 'alice' (no slashes, no dot first)")
    return name


def person_dir(root: Path, name: str) -> Path:
    """The folder of one enrolled name (rule 4); ValueError for a name that is not a plain, valid name."""
    return root / clean_name(name)


def people_dirs(root: Path) -> list[Path]:
    """The person folders of a gallery root (one per name), sorted; hidden folders skipped."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def cache_key(model_id: str, face_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Rule 1: what every cached entry depends on besides the photo's bytes, as stored in the cache file."""
    return {"model": model_id, "face": json.loads(json.dumps(dict(face_settings or {}), default=list))}


def _read_cache(path: Path, key: dict[str, Any]) -> dict[str, dict]:
    """Cached entries for this key; an unreadable, oversized or foreign cache is ignored (rebuilt)."""
    try:
        data = json.loads(read_regular(path, MAX_CACHE_BYTES).decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("gallery cache %s ignored (%s); its photos are embedded again", path, exc.strerror or exc
                    if isinstance(exc, OSError) else "not valid JSON")
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or any(
            data.get(name) != value for name, value in key.items()):
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _entry_problem(entry: Any) -> str | None:
    """Rule 2: why a cached entry cannot be used as is, or None."""
    if not isinstance(entry, dict):
        return "not an entry"
    if "problem" in entry:
        return None if isinstance(entry["problem"], str) and len(entry) == 1 else "malformed refusal"
    vector = entry.get("embedding")
    if not isinstance(vector, list) or len(vector) != EMBEDDING_DIM:
        return f"not a {EMBEDDING_DIM}-value embedding"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vector):
        return "not finite numbers"
    norm = math.sqrt(sum(v * v for v in vector))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        return f"length {norm:.3g}, not 1"
    return None


def face_count_problem(count: int) -> str | None:
    """Why a reference photo with `count` faces cannot be used (it must show exactly one), or None."""
    if count == 1:
        return None
    return "no face found" if count == 0 else f"{count} faces found, expected exactly one"


def _embed(raw: bytes, path: Path, embed_faces: EmbedFaces) -> dict:
    """Cache entry for one photo's bytes: its embedding if it shows exactly one face, else why it was refused."""
    try:
        image = decode_rgb(raw, path)
    except ImageError as exc:
        return {"problem": exc.reason}
    embeddings = embed_faces(image)
    problem = face_count_problem(len(embeddings))
    if problem:
        return {"problem": problem}
    return {"embedding": [round(float(v), 7) for v in embeddings[0]]}


class _Reporter:
    """Says how far a long first load is, every PROGRESS_EVERY_S (749 photos once took 78 s in silence)."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.progress = total, progress
        self.next_report = time.monotonic() + PROGRESS_EVERY_S

    def step(self, done: int) -> None:
        """One more photo handled."""
        if self.progress is not None:
            self.progress(done, self.total)
        now = time.monotonic()
        if now >= self.next_report and done < self.total:
            log.info("loading gallery: %d of %d photos", done, self.total)
            self.next_report = now + PROGRESS_EVERY_S


def load_gallery(root: Path, embed_faces: EmbedFaces, cache_path: Path, model_id: str,
                 face_settings: Mapping[str, Any] | None = None, progress: Progress | None = None) -> Gallery:
    """Embed every photo under `root` (reusing checked cached embeddings of unchanged files, rules 1-3) and report
    refused photos; `face_settings` are the detector's (config face.*), part of the cache key."""
    key = cache_key(model_id, face_settings)
    cached = _read_cache(cache_path, key)
    fresh: dict[str, dict] = {}
    gallery = Gallery()
    photos = [(person, photo) for person in people_dirs(root) for photo in image_files(person)]
    reporter = _Reporter(len(photos), progress)
    seen: list[tuple[str, Path, str, dict]] = []  # (name, photo, sha256, entry)
    for done, (person, photo) in enumerate(photos, 1):
        reporter.step(done)
        try:
            raw = read_image_bytes(photo)
        except ImageError as exc:
            gallery.problems.append(str(exc))
            continue
        digest = hashlib.sha256(raw).hexdigest()
        entry = fresh.get(digest) or _checked(cached, digest, photo) or _embed(raw, photo, embed_faces)
        fresh[digest] = entry
        seen.append((person.name, photo, digest, entry))
    names_of: dict[str, set[str]] = {}
    for name, _, digest, _ in seen:
        names_of.setdefault(digest, set()).add(name)
    rows = []
    for name, photo, digest, entry in seen:
        if len(names_of[digest]) > 1:  # rule 3
            gallery.problems.append(f"{photo}: the same photo is enrolled as {', '.join(sorted(names_of[digest]))}; "
                                    "it names nobody")
        elif "problem" in entry:
            gallery.problems.append(f"{photo}: {entry['problem']}")
        else:
            rows.append(entry["embedding"])
            gallery.names.append(name)
            gallery.files.append(photo)
    if rows:
        gallery.embeddings = np.asarray(rows, np.float32)
    for problem in gallery.problems:
        log.warning("gallery photo skipped: %s", problem)
    if fresh != cached:
        payload = {"version": CACHE_VERSION, **key, "entries": fresh}
        try:
            write_private(cache_path, json.dumps(payload).encode("utf-8"))
        except OSError as exc:  # disk full, read-only: the old cache stays intact, the next load embeds again
            log.warning("gallery cache %s not updated (%s); its photos are embedded again at the next start",
                        cache_path, exc.strerror or exc)
    return gallery


def _checked(cached: dict[str, dict], digest: str, photo: Path) -> dict | None:
    """Rule 2: the cached entry of these bytes if it is sound; None (embed again) if missing or bad, warned."""
    entry = cached.get(digest)
    if entry is None:
        return None
    problem = _entry_problem(entry)
    if problem:
        log.warning("gallery cache entry of %s is bad (%s); embedding the photo again", photo, problem)
        return None
    return entry


def drop_cached(cache_paths: list[Path], digests: set[str]) -> int:
    """Remove the entries of these photo hashes from each cache file at once (`remove NAME`); returns how many."""
    dropped = 0
    for path in cache_paths:
        try:
            data = json.loads(read_regular(path, MAX_CACHE_BYTES).decode("utf-8"))
            entries = data["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable cache holds nothing usable; the next load rebuilds it
        gone = [d for d in digests if d in entries]
        if gone:
            for d in gone:
                del entries[d]
            write_private(path, json.dumps(data).encode("utf-8"))
            dropped += len(gone)
    return dropped
