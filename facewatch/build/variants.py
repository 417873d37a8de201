"""The fastest variant of each network on this CPU, chosen at build time and saved as an optimised graph.

Rules:
  1. The variants of one network are the same weights in another arithmetic: fp32 and int8. Their accuracy
     parity was measured on real faces and frames (tests/test_build.py); here, on this machine, each variant must
     also agree with the reference variant on a fixed probe input (Pearson r of the raw outputs >= PROBE_MIN_R),
     which catches a kernel or quantizer that is broken on this CPU or ONNX Runtime build.
  2. Each variant is optimised once by ONNX Runtime at its highest level, for this CPU, and saved
     (`<name>.ort-opt.onnx`): the daemon loads that graph without re-optimising, which skips the optimiser's
     copies of the weights (FaceNet fp32: load peak 296 -> 164 MB measured here).
  3. Variants are timed in the daemon's own session settings (one thread, no arena), alternating, after a warm-up;
     the median of TIMED_RUNS decides. The fastest wins; one within TIE_FRACTION of the fastest wins instead when
     its file is smaller (it holds less memory for the same speed).
  4. The choice and every timing are recorded in variants.json in the model dir (with its sidecar hash), with the
     ONNX Runtime version: an optimised graph is valid only for the runtime that wrote it, so a record from
     another version is ignored and the daemon loads the plain files until `facewatch models build` runs again.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facewatch.paths import write_private

OPTIMISED_SUFFIX = ".ort-opt.onnx"
RECORD = "variants.json"
PROBE_MIN_R = 0.99
TIMED_RUNS = 15
TIE_FRACTION = 0.10


@dataclass(frozen=True)
class Variant:
    """One candidate file of a network: its label ("fp32", "int8") and path (the plain, unoptimised graph)."""

    label: str
    path: Path


@dataclass
class Choice:
    """What the build chose for one network, and why."""

    network: str
    chosen: str
    file: str  # the optimised graph the daemon loads (a name in the model dir)
    timings_ms: dict[str, float]
    probe_r: dict[str, float]
    sizes_mb: dict[str, float]

    def summary(self) -> str:
        """One line for the build output and `models list`."""
        times = ", ".join(f"{label} {ms:.1f} ms" for label, ms in self.timings_ms.items())
        return f"{self.network}: {self.chosen} ({times} per run on this CPU) -> {self.file}"


def optimised_path(path: Path) -> Path:
    """Where the optimised graph of a plain .onnx file goes (beside it)."""
    path = Path(path)
    return path.with_name(path.name[: -len(".onnx")] + OPTIMISED_SUFFIX)


def optimise(src: Path, dst: Path) -> Path:
    """Rule 2: let ONNX Runtime optimise `src` at its highest level for this CPU and save the graph to `dst` (0600)."""
    import onnxruntime as ort

    dst = Path(dst)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        out = Path(tmp) / dst.name
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(out)
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
        write_private(dst, out.read_bytes())
    return dst


def _probe_feed(session) -> dict[str, np.ndarray]:
    """A fixed input for a one-input image network: a smooth gradient plus seeded noise, batch 1, in [-1, 1]."""
    (inp,) = session.get_inputs()
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    if len(shape) == 4 and not isinstance(inp.shape[2], int):  # fully dynamic spatial size (P-Net)
        shape[2:] = [120, 160]
    ramp = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    noise = np.random.default_rng(0).normal(0, 0.3, shape).astype(np.float32)
    return {inp.name: np.clip(ramp + noise, -1, 1)}


def _flat_outputs(session, feed) -> np.ndarray:
    """All outputs of one run, concatenated into one vector."""
    return np.concatenate([np.asarray(o, np.float64).ravel() for o in session.run(None, feed)])


def choose(network: str, variants: list[Variant], open_session: Callable[[Path], object],
           feed_for: Callable[[object], dict] = _probe_feed) -> Choice:
    """Rules 1-3 for one network: optimise each variant, check it on the probe, time them, keep the winner.

    `open_session(path)` opens a graph as the daemon does; the first variant is the reference for the probe.
    """
    optimised = {v.label: optimise(v.path, optimised_path(v.path)) for v in variants}
    sessions = {label: open_session(path) for label, path in optimised.items()}
    reference = variants[0].label
    feed = feed_for(sessions[reference])
    expected = _flat_outputs(sessions[reference], feed)
    probe_r = {}
    for label, session in sessions.items():
        got = _flat_outputs(session, feed)
        probe_r[label] = 1.0 if label == reference else float(np.corrcoef(expected, got)[0, 1])
    agreeing = [v for v in variants if probe_r[v.label] >= PROBE_MIN_R]
    times: dict[str, list[float]] = {v.label: [] for v in agreeing}
    for _ in range(2):  # warm-up
        for v in agreeing:
            sessions[v.label].run(None, feed)
    for _ in range(TIMED_RUNS):
        for v in agreeing:
            start = time.perf_counter()
            sessions[v.label].run(None, feed)
            times[v.label].append((time.perf_counter() - start) * 1000)
    timings = {label: statistics.median(runs) for label, runs in times.items()}
    sizes = {v.label: optimised[v.label].stat().st_size / 2**20 for v in variants}
    fastest = min(timings.values())
    near = [v.label for v in agreeing if timings[v.label] <= fastest * (1 + TIE_FRACTION)]
    chosen = min(near, key=lambda label: (sizes[label], timings[label]))
    for label, path in optimised.items():  # only the winner's optimised graph is kept
        if label != chosen:
            path.unlink(missing_ok=True)
    return Choice(network, chosen, optimised[chosen].name, {k: round(v, 2) for k, v in timings.items()},
                  {k: round(v, 6) for k, v in probe_r.items()}, {k: round(v, 2) for k, v in sizes.items()})


def _runtime_version() -> str:
    import onnxruntime as ort

    return ort.__version__


def write_record(model_dir: Path, choices: list[Choice]) -> Path:
    """Rule 4: save the choices (and the ONNX Runtime version) as variants.json in the model dir; return its path."""
    record = {"onnxruntime": _runtime_version(), "built": time.strftime("%Y-%m-%d %H:%M:%S"),
              "networks": {c.network: asdict(c) for c in choices}}
    path = Path(model_dir) / RECORD
    write_private(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    return path


def read_record(model_dir: Path) -> dict[str, Choice]:
    """The recorded choices by network, or {} when there is no valid record for this ONNX Runtime (rule 4).

    The file is treated as untrusted: anything but a small regular file of the expected shape is ignored.
    """
    path = Path(model_dir) / RECORD
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 20:
            return {}
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("onnxruntime") != _runtime_version():
            return {}
        choices = {name: Choice(**fields) for name, fields in record["networks"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}
    return {name: c for name, c in choices.items() if os.path.basename(c.file) == c.file}
