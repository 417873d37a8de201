"""An fp32 twin of a dynamically int8-quantized ONNX model (ONNX Runtime's quantize_dynamic output).

Such a model runs each convolution as DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul(scale), which is slow
on a CPU without VNNI. Rules of the rewrite:
  1. Each ConvInteger with a constant uint8/int8 weight becomes a float Conv on the unquantized input, with the
     weight (w - zero_point) * scale: the very weights the publisher quantized, dequantized once.
  2. The Cast and scale Mul after it go away; a following Add of a reshaped constant bias becomes the Conv's bias.
  3. Nodes and initializers that nothing reads any more are dropped; every other node is kept as it is.
  4. A ConvInteger that does not match this pattern fails the rewrite (DequantizeError): no half-converted graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facewatch.paths import write_private


class DequantizeError(ValueError):
    """The model is not in the dynamic-quantization pattern this rewrite knows."""


class _Graph:
    """Producer/consumer lookups over one ONNX graph."""

    def __init__(self, graph) -> None:
        from onnx import numpy_helper

        self.graph = graph
        self.inits = {i.name: i for i in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.array = lambda name: numpy_helper.to_array(self.inits[name])

    def only_consumer(self, name: str, op: str):
        """The single node reading `name` if it is an `op`, else DequantizeError."""
        readers = self.consumers.get(name, [])
        if len(readers) != 1 or readers[0].op_type != op:
            raise DequantizeError(f"{name} is read by {[n.op_type for n in readers]}, expected one {op}")
        return readers[0]

    def constant(self, name: str) -> np.ndarray:
        """An initializer's value, or that of a Reshape of an initializer (how quantize_dynamic shapes biases)."""
        if name in self.inits:
            return self.array(name)
        node = self.producer.get(name)
        if node is not None and node.op_type == "Reshape" and node.input[0] in self.inits:
            return self.array(node.input[0])
        raise DequantizeError(f"{name} is not a constant")


def _float_conv(g: _Graph, conv_int, helper, numpy_helper) -> list:
    """Rules 1-2 for one ConvInteger: the new Conv node, replacing ConvInteger, Cast, Mul and (maybe) Add."""
    x_q, w_q, _, w_zp = (list(conv_int.input) + [""] * 4)[:4]
    quantizer = g.producer.get(x_q)
    if quantizer is None or quantizer.op_type != "DynamicQuantizeLinear" or w_q not in g.inits:
        raise DequantizeError(f"{conv_int.name}: not a dynamically quantized convolution")
    cast = g.only_consumer(conv_int.output[0], "Cast")
    mul = g.only_consumer(cast.output[0], "Mul")
    scales = g.producer.get(next(i for i in mul.input if i != cast.output[0]))
    if scales is None or scales.op_type != "Mul" or quantizer.output[1] not in scales.input:
        raise DequantizeError(f"{conv_int.name}: its output scale is not input scale x weight scale")
    w_scale = g.constant(next(i for i in scales.input if i != quantizer.output[1]))
    weight = g.array(w_q).astype(np.float32)
    if w_zp:
        zero = g.constant(w_zp).astype(np.float32)
        weight -= zero.reshape(-1, *([1] * (weight.ndim - 1))) if zero.size > 1 else zero
    weight *= w_scale.astype(np.float32).reshape(-1, *([1] * (weight.ndim - 1))) if w_scale.size > 1 else w_scale
    inputs = [quantizer.input[0], f"{w_q}_fp32"]
    g.graph.initializer.append(numpy_helper.from_array(weight, inputs[1]))
    output, removed = mul.output[0], [conv_int, cast, mul]
    readers = g.consumers.get(output, [])
    if len(readers) == 1 and readers[0].op_type == "Add":
        other = next(i for i in readers[0].input if i != output)
        try:
            bias = g.constant(other).astype(np.float32).reshape(-1)
        except DequantizeError:
            bias = None
        if bias is not None and bias.size == weight.shape[0]:
            inputs.append(f"{other}_conv_bias")
            g.graph.initializer.append(numpy_helper.from_array(bias, inputs[2]))
            output = readers[0].output[0]
            removed.append(readers[0])
    attrs = {a.name: helper.get_attribute_value(a) for a in conv_int.attribute}
    return [helper.make_node("Conv", inputs, [output], name=f"{conv_int.name}_fp32", **attrs), removed]


def _drop_unread(graph) -> None:
    """Rule 3: remove nodes none of whose outputs is read, then initializers nothing reads."""
    outputs = {o.name for o in graph.output}
    while True:
        read = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in read]:
        graph.initializer.remove(init)


def dequantize_model(model):
    """Return a copy of ModelProto `model` with every ConvInteger rewritten as a float Conv (module rules)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = _Graph(model.graph)
    convs = [n for n in model.graph.node if n.op_type == "ConvInteger"]
    if not convs:
        raise DequantizeError("the model has no ConvInteger: it is not dynamically int8-quantized")
    if any(n.op_type in ("MatMulInteger", "QLinearConv", "QLinearMatMul") for n in model.graph.node):
        raise DequantizeError("the model has integer ops other than ConvInteger; not rewritten")
    replaced = {}
    for conv in convs:
        new, removed = _float_conv(g, conv, helper, numpy_helper)
        replaced[id(removed[0])] = (new, removed)
    nodes, dropped = [], {id(n) for _, removed in replaced.values() for n in removed}
    for node in model.graph.node:  # each Conv takes its ConvInteger's place, so the order stays topological
        if id(node) in replaced:
            nodes.append(replaced[id(node)][0])
        elif id(node) not in dropped:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unread(model.graph)
    onnx.checker.check_model(model)
    return model


def dequantize_file(src: Path, out: Path) -> Path:
    """Write the fp32 twin of the int8 model `src` to `out` atomically (0600); return out."""
    import onnx

    try:
        model = onnx.load(str(src))
    except Exception as exc:  # protobuf's DecodeError types for damaged files
        raise DequantizeError(f"{src} is not a readable ONNX file ({exc})") from exc
    write_private(Path(out), dequantize_model(model).SerializeToString())
    return Path(out)
