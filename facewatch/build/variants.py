"""The fastest variant of each network on this CPU, chosen at build time and saved as an optimised graph.

Rules:
  1. The variants of one network are the same weights in another arithmetic: fp32 and int8. Their accuracy
     parity was measured on real faces and frames (tests/test_build.py, tests/test_onnx_parity.py); here, on
     this machine, each variant must also agree with the reference variant on a fixed probe input (Pearson r of
     the raw outputs >= PROBE_MIN_R), which catches a kernel or quantizer broken on this CPU or runtime build.
  2. Each variant is optimised once by ONNX Runtime at its highest level, for this CPU, and saved
     into the model dir (`<name>.ort-opt.onnx`): the daemon loads that graph without re-optimising, which skips the optimiser's
     copies of the weights (FaceNet fp32: load peak 296 -> 164 MB measured here).
  3. Variants are timed in the daemon's own session settings (the caller's open_session), alternating, after a
     warm-up; the median of TIMED_RUNS decides. The fastest wins; one within TIE_FRACTION of the fastest wins
     instead when its file is smaller (it holds less memory for the same speed). A network with a memory budget
     (FaceNet: FACENET_BUDGET_MB) takes only variants whose graph fits it, or the smallest one when none does.
  4. The choice, every timing and the chosen file's sha256 are recorded in variants.json in the model dir, with the
     ONNX Runtime version and the CPU (facewatch.weights.variants reads it; a record from another runtime or CPU
     is ignored: the optimised graph may use instructions or layouts of this one only).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facewatch.paths import write_private
from facewatch.weights.registry import sha256_of
from facewatch.weights.variants import OPTIMISED_SUFFIX, RECORD, Choice, cpu_identity, runtime_version

PROBE_MIN_R = 0.99
TIMED_RUNS = 15
TIE_FRACTION = 0.10
# What FaceNet may add while held: DESIGN.md's targets are steady <= 110 MB and <= 180 MB with FaceNet held.
# Its fp32 weights alone are 90 MB (+106 MB RSS measured), its int8 ones 23 MB (+41 MB).
FACENET_BUDGET_MB = 70.0


@dataclass(frozen=True)
class Variant:
    """One candidate file of a network: its label ("fp32", "int8") and path (the plain, unoptimised graph)."""

    label: str
    path: Path


def optimise(src: Path, dst: Path) -> Path:
    """Rule 2: let ONNX Runtime optimise `src` at its highest level for this CPU and save the graph to `dst` (0600)."""
    import onnxruntime as ort

    dst = Path(dst)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        out = Path(tmp) / dst.name
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(out)
        options.log_severity_level = 3  # its warning that the graph is tied to this CPU: rule 4 records the CPU
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


def choose(network: str, variants: list[Variant], out_dir: Path, open_session: Callable[[Path], Any],
           budget_mb: float | None = None, feed_for: Callable[[object], dict] = _probe_feed) -> Choice:
    """Rules 1-3 for one network: optimise each variant into out_dir, check it on the probe, time them, keep one.

    `open_session(path)` opens a graph as the daemon does; the first variant is the reference for the probe.
    """
    optimised = {v.label: optimise(v.path, Path(out_dir) / f"{network}.{v.label}{OPTIMISED_SUFFIX}") for v in variants}
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
    fitting = [v.label for v in agreeing if budget_mb is None or sizes[v.label] <= budget_mb]
    if fitting:
        fastest = min(timings[label] for label in fitting)
        near = [label for label in fitting if timings[label] <= fastest * (1 + TIE_FRACTION)]
        chosen = min(near, key=lambda label: (sizes[label], timings[label]))
    else:
        chosen = min((v.label for v in agreeing), key=lambda label: sizes[label])
    for label, path in optimised.items():  # only the winner's optimised graph is kept
        if label != chosen:
            path.unlink(missing_ok=True)
    return Choice(network, chosen, optimised[chosen].name, sha256_of(optimised[chosen]),
                  {k: round(v, 2) for k, v in timings.items()}, {k: round(v, 6) for k, v in probe_r.items()},
                  {k: round(v, 2) for k, v in sizes.items()}, budget_mb)


def write_record(model_dir: Path, choices: list[Choice]) -> Path:
    """Rule 4: save the choices (and the ONNX Runtime version) as variants.json in the model dir; return its path."""
    record = {"onnxruntime": runtime_version(), "cpu": cpu_identity(), "built": time.strftime("%Y-%m-%d %H:%M:%S"),
              "networks": {c.network: asdict(c) for c in choices}}
    path = Path(model_dir) / RECORD
    write_private(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    return path
