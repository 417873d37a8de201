"""Shared bench helpers: the offline model dir, a clip, RSS and CPU time readings."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEWATCH_SHARED", REPO.parent / "shared"))
CLIPS = {
    "hamilton": SHARED / "data" / "face_recognition_examples" / "examples" / "short_hamilton_clip.mp4",
    "video": SHARED / "data" / "facenet_pytorch_samples" / "examples" / "video.mp4",
}
OUT = REPO / "bench" / "out"  # gitignored: generated clips, CSVs, plots
sys.path.insert(0, str(REPO / "tests"))
from helpers.media import write_segment  # noqa: E402  (the project's one clip writer, shared with the tests)


def scene(name: str, frames: range, clip: str = "hamilton") -> Path:
    """A real segment of one of the clips as its own video file (made once under bench/out)."""
    path = OUT / f"{name}.mp4"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        write_segment(CLIPS[clip], frames, path)
    return path


def use_offline_models() -> None:
    """Point facewatch at the repo's build dir and the shared offline copies, unless the caller chose a dir."""
    os.environ.setdefault("FACEWATCH_MODEL_DIR", os.pathsep.join([str(REPO / ".cache" / "models"),
                                                                   str(SHARED / "models")]))


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def cpu_s() -> float:
    """User + system CPU seconds used by this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
