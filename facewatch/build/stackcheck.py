"""Checks that the installed torch and torchvision match, by running torchvision's compiled NMS once."""

from __future__ import annotations

import sys


def check_nms() -> str:
    """Run torchvision.ops.nms on three boxes; return a version line, raise RuntimeError on a mismatched pair."""
    try:
        import torch
        import torchvision
    except ImportError as exc:  # pragma: no cover - only on a broken install
        raise RuntimeError(f"torch/torchvision not importable ({exc}); run scripts/setup.sh") from exc
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    try:
        keep = torchvision.ops.nms(boxes, scores, 0.5).tolist()
    except RuntimeError as exc:
        raise RuntimeError(
            f"torchvision {torchvision.__version__} does not match torch {torch.__version__} ({exc}); "
            "reinstall the pair pinned in pyproject.toml: scripts/setup.sh"
        ) from exc
    if keep != [0, 2]:
        raise RuntimeError(f"torchvision.ops.nms returned {keep}, expected [0, 2]")
    return f"torch {torch.__version__} + torchvision {torchvision.__version__}: nms OK"


def main() -> int:
    """Print the check's result; exit 1 with the fix when the pair is broken."""
    try:
        print(check_nms())
    except RuntimeError as exc:
        print(f"stack check FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
