"""Read a frozen TensorFlow GraphDef (.pb) with no TensorFlow and no generated protobuf classes.

A GraphDef is a protobuf message; this module decodes the few fields a frozen inference graph uses straight
from the wire format (varints and length-delimited fields), so the light install needs neither TensorFlow nor
tensorboard's proto classes. Field numbers are the ones of TensorFlow's graph.proto, node_def.proto,
attr_value.proto, tensor.proto and tensor_shape.proto. Tensors are decoded on demand, as numpy arrays that view
the file's bytes where they can.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# TensorFlow DataType enum -> numpy dtype, for the types a frozen float graph holds.
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_}
# TensorProto's repeated value field for each dtype when there is no tensor_content: (field, packed type).
_VALUE_FIELDS = {1: (5, "f4"), 2: (6, "f8"), 3: (7, "varint"), 9: (10, "varint"), 10: (11, "varint")}
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class GraphDefError(ValueError):
    """The file is not a GraphDef this reader understands (damaged, or a field of an unexpected kind)."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at `pos`; return (value, position after it)."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise GraphDefError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(buf: memoryview) -> Iterator[tuple[int, Any]]:
    """Yield (field number, value) of one serialised message: an int for varints, a memoryview otherwise (Any:
    the field number, which the caller knows, decides which)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire in (_FIXED64, _FIXED32):
            end = pos + (8 if wire == _FIXED64 else 4)
            value, pos = buf[pos:end], end
        elif wire == _BYTES:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise GraphDefError(f"unsupported protobuf wire type {wire} (field {number})")
        if pos > len(buf):
            raise GraphDefError(f"field {number} runs past the end of its message")
        yield number, value


def _signed(value: int) -> int:
    """A varint read as int64 (negative numbers are sent as their 64-bit two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(value: int | memoryview) -> list[int]:
    """A repeated integer field, packed (one length-delimited run) or not (one varint)."""
    if isinstance(value, int):
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        number, pos = _varint(value, pos)
        out.append(_signed(number))
    return out


def _text(value: int | memoryview) -> str:
    """A string field."""
    if isinstance(value, int):
        raise GraphDefError("expected a string field, found a number")
    return bytes(value).decode("utf-8", errors="replace")


def _shape(buf: memoryview) -> list[int]:
    """A TensorShapeProto's dims (repeated Dim dim = 2, Dim.size = 1); -1 for an unknown size."""
    return [_signed(next((v for n, v in fields(dim) if n == 1), 0)) for n, dim in fields(buf) if n == 2]


def tensor(buf: memoryview) -> np.ndarray:
    """Decode a TensorProto: its dtype, shape and values (raw tensor_content, or the typed repeated field)."""
    dtype, shape, content, values = 0, [], None, []
    for number, value in fields(buf):
        if number == 1:
            dtype = value
        elif number == 2:
            shape = _shape(value)
        elif number == 4:
            content = value
        elif dtype in _VALUE_FIELDS and number == _VALUE_FIELDS[dtype][0]:
            values.append(value)
    if dtype not in _DTYPES:
        raise GraphDefError(f"tensor of unsupported TensorFlow dtype {dtype}")
    np_dtype = np.dtype(_DTYPES[dtype]).newbyteorder("<")
    count = int(np.prod(shape, dtype=np.int64))
    if content is not None:
        array = np.frombuffer(content, dtype=np_dtype)
    else:
        kind = _VALUE_FIELDS[dtype][1]
        if kind == "varint":
            array = np.array([v for value in values for v in _packed_varints(value)], dtype=np_dtype)
        else:
            array = np.concatenate([np.frombuffer(v, dtype=kind) for v in values] or [np.zeros(0, kind)])
        if 0 < array.size < count:  # TensorFlow repeats the last value to fill the shape
            array = np.concatenate([array, np.full(count - array.size, array[-1], array.dtype)])
    if array.size != count:
        raise GraphDefError(f"tensor holds {array.size} values, its shape {shape} needs {count}")
    return array.astype(_DTYPES[dtype], copy=False).reshape(shape)


@dataclass
class Node:
    """One NodeDef: its op, its inputs (without ':0' output suffixes or '^' control edges) and raw attributes."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, memoryview] = field(default_factory=dict)

    def attr(self, key: str) -> list[tuple[int, Any]]:
        """The (field, value) pairs of one AttrValue; GraphDefError when the node lacks it."""
        if key not in self.attrs:
            raise GraphDefError(f"node {self.name} ({self.op}) has no attribute {key!r}")
        return list(fields(self.attrs[key]))

    def attr_value(self, key: str):
        """An AttrValue's scalar (s as str, i as int, f as float, b as bool), list of ints (list.i) or shape dims."""
        for number, value in self.attr(key):
            if number == 7:  # TensorShapeProto: repeated Dim dim = 2, Dim.size = 1
                return _shape(value)
            if number == 2:
                return _text(value)
            if number in (3, 5):
                return _signed(value) if number == 3 else bool(value)
            if number == 4:
                return float(np.frombuffer(value, "<f4")[0])
            if number == 1:  # ListValue: repeated int64 i = 3
                return [i for n, v in fields(value) if n == 3 for i in _packed_varints(v)]
        raise GraphDefError(f"node {self.name}: attribute {key!r} has no value of a supported kind")

    def const(self) -> np.ndarray:
        """The value of a Const node."""
        if self.op != "Const":
            raise GraphDefError(f"node {self.name} is a {self.op}, not a constant")
        for number, value in self.attr("value"):
            if number == 8:
                return tensor(value)
        raise GraphDefError(f"constant {self.name} holds no tensor")


def _node(buf: memoryview) -> Node:
    """Decode one NodeDef (name 1, op 2, input 3, attr 5 as map entries of key 1 and value 2)."""
    node = Node(name="", op="")
    for number, value in fields(buf):
        if number == 1:
            node.name = _text(value)
        elif number == 2:
            node.op = _text(value)
        elif number == 3:
            name = _text(value)
            if not name.startswith("^"):
                node.inputs.append(name.split(":")[0])
        elif number == 5:
            entry = dict(fields(value))
            node.attrs[_text(entry.get(1, memoryview(b"")))] = entry.get(2, memoryview(b""))
    return node


def read_graph(path: Path) -> dict[str, Node]:
    """The nodes of a GraphDef file by name, in file order; GraphDefError when it does not parse as one."""
    data = memoryview(Path(path).read_bytes())
    nodes: dict[str, Node] = {}
    try:
        for number, value in fields(data):
            if number == 1:  # GraphDef.node
                if isinstance(value, int):
                    raise GraphDefError("GraphDef.node is not a message")
                node = _node(value)
                nodes[node.name] = node
    except GraphDefError as exc:
        raise GraphDefError(f"{path} is not a TensorFlow GraphDef: {exc}") from exc
    if not nodes or any(not n.name or not n.op for n in nodes.values()):
        raise GraphDefError(f"{path} is not a TensorFlow GraphDef: no named nodes")
    return nodes
