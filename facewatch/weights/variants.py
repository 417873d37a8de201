"""Which variant of each network `facewatch models build` chose for this CPU (variants.json in the model dir).

The build (facewatch.build.variants) times the fp32 and int8 variants and saves the winner as a graph ONNX
Runtime already optimised for this CPU; the daemon loads that graph when the record is valid, else the plain file.
A record is valid only for the ONNX Runtime version and the CPU it was written on (the optimised graph may use
that CPU's instructions and layouts), and each chosen file only when its sha256 matches the record: files in the
model dir are untrusted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("facewatch.weights.variants")

RECORD = "variants.json"
OPTIMISED_SUFFIX = ".ort-opt.onnx"  # weights/ort.cpu_session loads these without re-optimising
SHAPE_MARK = "@"  # "<network>@<height>x<width>": a twin of the network at another input size (build/yolo_shape)
MAX_RECORD_BYTES = 1 << 20


@dataclass
class Choice:
    """What the build chose for one network, and the measurements behind it."""

    network: str
    chosen: str  # "fp32" or "int8"
    file: str  # the optimised graph the daemon loads: a bare name in the first model dir
    sha256: str
    timings_ms: dict[str, float]
    probe_r: dict[str, float]
    sizes_mb: dict[str, float]
    budget_mb: float | None = None  # the memory budget the chosen graph had to fit, if any

    def summary(self) -> str:
        """One line for the build output and `models list`."""
        times = ", ".join(f"{label} {ms:.1f} ms ({self.sizes_mb.get(label, 0):.0f} MB)"
                          for label, ms in self.timings_ms.items())
        budget = f", budget {self.budget_mb:.0f} MB" if self.budget_mb is not None else ""
        return f"{self.network}: {self.chosen} ({times} per run on this CPU{budget}) -> {self.file}"


def runtime_version() -> str:
    """The installed ONNX Runtime's version (an optimised graph is tied to it)."""
    import onnxruntime

    return onnxruntime.__version__


def cpu_identity() -> str:
    """This CPU's model name and instruction-set flags (Linux /proc/cpuinfo), hashed; the machine type elsewhere."""
    import hashlib
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [line for line in f.read(1 << 20).splitlines() if line.startswith(("model name", "flags"))]
    except OSError:
        lines = []
    first = sorted(set(lines))
    return hashlib.sha256("\n".join(first or [platform.machine()]).encode()).hexdigest()[:16]


def read_record(model_dir: Path) -> dict[str, Choice]:
    """The recorded choices by network; {} when there is no readable record for this ONNX Runtime and CPU."""
    path = Path(model_dir) / RECORD
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RECORD_BYTES:
            return {}
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("onnxruntime") != runtime_version() or record.get("cpu") != cpu_identity():
            log.info("%s was written by another ONNX Runtime or CPU; run `facewatch models build` again", path)
            return {}
        choices = {name: Choice(**fields) for name, fields in record["networks"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring unreadable %s (%s); run `facewatch models build` again", path, exc)
        return {}
    return {name: c for name, c in choices.items() if Path(c.file).name == c.file and c.file.endswith(OPTIMISED_SUFFIX)}


def chosen_file(network: str, dirs: list[Path]) -> Path | None:
    """The verified optimised graph the build chose for `network`, or None (no record, or a file that fails)."""
    from facewatch.weights.registry import sha256_of

    if not dirs:
        return None
    choice = read_record(dirs[0]).get(network)
    if choice is None:
        return None
    path = dirs[0] / choice.file
    if path.is_symlink() or not path.is_file() or sha256_of(path) != choice.sha256:
        log.warning("%s does not match %s; loading the plain model (run `facewatch models build`)", path, RECORD)
        return None
    return path


def shaped_files(network: str, dirs: list[Path]) -> dict[tuple[int, int], Path]:
    """The verified twins of `network` at other input sizes that the build recorded, by (height, width)."""
    shaped = {}
    for name in read_record(dirs[0]) if dirs else {}:
        base, mark, size = name.partition(SHAPE_MARK)
        height, _, width = size.partition("x")
        if base == network and mark and height.isdigit() and width.isdigit():
            path = chosen_file(name, dirs)
            if path is not None:
                shaped[int(height), int(width)] = path
    return shaped
