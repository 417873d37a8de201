"""ONNX Runtime plumbing shared by every onnx backend: a CPU session set up for a light background process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from facewatch.weights.heap import release_freed_memory
from facewatch.weights.variants import OPTIMISED_SUFFIX

if TYPE_CHECKING:
    import onnxruntime


# Intra-op threads of the networks of a face pass (MTCNN, FaceNet), the one moment a stranger's lock waits on
# inference: on 2 cores, a 1920x1080 frame with six faces took MTCNN 235 -> 181 ms and FaceNet 206 -> 138 ms, for
# +5-14 % CPU time (medians of 8 runs). The person model, run on every frame, keeps one thread: there CPU time
# counts, not latency.
FACE_PASS_THREADS = min(2, os.cpu_count() or 1)


def cpu_session(
    path: Path, what: str, hint: str, threads: int = 1, memory_arena: bool = False
) -> onnxruntime.InferenceSession:
    """Open an ONNX model in ONNX Runtime on the CPU, set up for a light background process.

    `threads` intra-op threads, one inter-op thread, sequential execution; pool threads sleep instead of spinning
    between runs (the cores are shared with the user's work). Without the memory arena, buffers are freed after
    each run instead of kept at their peak size for the life of the process; with it (a network run on every
    frame at one size), they are kept, planned by the arena alone (no memory pattern: +5 MB for the person model,
    no faster). A graph `facewatch models build` saved already optimised for this CPU
    (weights.variants.OPTIMISED_SUFFIX) is loaded as it is: re-optimising would copy its weights again (FaceNet
    fp32: 296 MB load peak instead of 164). A missing or unreadable file raises FileNotFoundError / ValueError naming
    `what` and ending with `hint` (how to get a good file).
    """
    import onnxruntime as ort

    path = Path(path)
    if int(threads) < 1:
        raise ValueError(f"threads must be 1 or more, got {threads}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; {hint}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = bool(memory_arena)
    options.enable_mem_pattern = not memory_arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if path.name.endswith(OPTIMISED_SUFFIX):
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
        raise ValueError(f"{what} {path} is not a readable ONNX file ({exc}); {hint}") from exc
    release_freed_memory()
    return session
