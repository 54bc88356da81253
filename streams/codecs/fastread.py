"""A reader compiled per writer schema: Avro bytes → the same Python values as fastavro's.

fastavro's ``schemaless_reader`` walks the schema dicts for every record and calls the file
object's ``read`` once per primitive (117 calls for a Debezium envelope of the customers table):
that was nearly half of the CPU of turning a record into a change event. This module turns a
parsed writer schema, once, into straight-line Python that indexes the message's bytes directly.

Values are fastavro's for every input it accepts: the same types and dict field order, fastavro's
own logical-type readers (``decimal`` → ``Decimal``, …) applied the same way, a union branch index
read as a Python index the way fastavro does (``-1`` is the last branch). Bad input raises one of
the errors ``AvroDecoder`` turns into ``AvroBodyError`` (``EOFError``, ``IndexError``,
``ValueError``, …); one deliberate difference: a varint longer than the 10 bytes of a long is an
error here, where fastavro's C reader goes on shifting bits out. A schema this module does not
cover (a recursive record, an unknown type) gets no compiled reader: ``compile_reader`` returns
``None`` and the caller keeps fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from streams.codecs.plan import PRIMITIVES, Plan, Unsupported, reader_plan

# data, start → (value, end)
Reader = Callable[[bytes, int], tuple[Any, int]]

_MASK64 = (1 << 64) - 1
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


def _varint_reader() -> Callable[[bytes, int], tuple[int, int]]:
    """``read_long(data, p)``: a zig-zag varint of more than one byte at ``p`` (the one-byte case is
    inlined by the compiler), as (value, end).

    Unrolled into one test per byte (LSNs and microsecond or nanosecond timestamps take 5-9 bytes:
    a loop cost a third more). Kept to 64 bits like fastavro's C reader; a varint longer than the
    10 bytes a long can take is an error.
    """
    lines = ["def read_long(data, p):", "    n = data[p] & 127"]
    for k in range(1, 10):
        lines += [f"    b = data[p + {k}]", "    if b < 128:", f"        n |= b << {7 * k}"]
        if k == 9:  # the 10th byte carries bits 63..69: keep bit 63 only
            lines += [f"        n &= {_MASK64}"]
        lines += [f"        return (n >> 1) ^ -(n & 1), p + {k + 1}", f"    n |= (b & 127) << {7 * k}"]
    lines += ["    raise ValueError('varint longer than 10 bytes')"]
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "<avro varint>", "exec"), namespace)  # noqa: S102 - generated here
    reader: Callable[[bytes, int], tuple[int, int]] = namespace["read_long"]
    return reader


read_long = _varint_reader()


class _Compiler:
    """Straight-line Python from a reader plan (``streams.codecs.plan``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.count = 0

    def var(self, stem: str = "v") -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, value: Any) -> str:
        name = self.var("k")
        self.consts[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def long(self, depth: int, target: str) -> None:
        self.emit(depth, "b = data[p]")
        self.emit(depth, "if b < 128:")
        self.emit(depth + 1, f"{target} = (b >> 1) ^ -(b & 1)")
        self.emit(depth + 1, "p += 1")
        self.emit(depth, "else:")
        self.emit(depth + 1, f"{target}, p = read_long(data, p)")

    def sized(self, depth: int, target: str, size: str) -> None:
        """``size`` bytes from ``p`` into ``target`` (EOFError when the message is shorter)."""
        self.emit(depth, f"if {size} < 0 or p + {size} > end:")
        self.emit(depth + 1, "raise EOFError('Avro value runs past the end of the message')")
        self.emit(depth, f"{target} = data[p : p + {size}]")
        self.emit(depth, f"p += {size}")

    def read(self, node: Plan, depth: int, target: str) -> None:
        """Emit code that reads one value of the plan ``node`` at ``p`` into ``target``."""
        kind = node[0]
        if kind in PRIMITIVES:
            self.primitive(kind, depth, target)
        elif kind == "union":
            self.union(node[1], depth, target)
        elif kind == "record":
            names = []
            for name, field in zip(node[1], node[2], strict=True):
                value = self.var()
                self.read(field, depth, value)
                names.append(f"{name!r}: {value}")
            self.emit(depth, f"{target} = {{{', '.join(names)}}}")
        elif kind == "enum":
            self.long(depth, "i")
            self.emit(depth, f"{target} = {self.const(node[1])}[i]")
        elif kind == "fixed":
            self.sized(depth, target, str(node[1]))
        elif kind == "array":
            self.blocks(node[1], None, depth, target)
        elif kind == "map":
            self.blocks(node[1], ("string",), depth, target)
        elif kind == "logical":
            self.read(node[1], depth, target)
            self.emit(depth, f"{target} = {self.const(node[2])}({target}, {self.const(node[3])}, None)")
        else:
            msg = f"unknown plan node {kind!r}"
            raise Unsupported(msg)

    def primitive(self, kind: str, depth: int, target: str) -> None:
        if kind == "null":
            self.emit(depth, f"{target} = None")
        elif kind == "boolean":
            self.emit(depth, f"{target} = data[p] != 0")
            self.emit(depth, "p += 1")
        elif kind in ("int", "long"):
            self.long(depth, target)
        elif kind in ("float", "double"):
            width, codec = (4, _FLOAT) if kind == "float" else (8, _DOUBLE)
            self.emit(depth, f"if p + {width} > end:")
            self.emit(depth + 1, "raise EOFError('Avro value runs past the end of the message')")
            self.emit(depth, f"{target} = {self.const(codec.unpack_from)}(data, p)[0]")
            self.emit(depth, f"p += {width}")
        else:
            size = self.var("n")
            self.long(depth, size)
            self.sized(depth, target, size)
            if kind == "string":
                self.emit(depth, f"{target} = {target}.decode()")

    def union(self, branches: tuple[Plan, ...], depth: int, target: str) -> None:
        if branches and branches[0] == ("null",):
            # ``["null", T]``, most of Debezium's fields: a 0 byte is the null branch.
            self.emit(depth, "if data[p] == 0:")
            self.emit(depth + 1, f"{target} = None")
            self.emit(depth + 1, "p += 1")
            self.emit(depth, "else:")
            depth += 1
        self.long(depth, "i")
        # fastavro indexes the branch list with the number read: -1 is the last branch.
        self.emit(depth, "if i < 0:")
        self.emit(depth + 1, f"i += {len(branches)}")
        for index, branch in enumerate(branches):
            self.emit(depth, f"{'if' if index == 0 else 'elif'} i == {index}:")
            self.read(branch, depth + 1, target)
        self.emit(depth, "else:")
        self.emit(depth + 1, "raise IndexError('union branch index out of range')")

    def blocks(self, item: Plan, key: Plan | None, depth: int, target: str) -> None:
        """Avro's blocked array/map: counts until 0, a negative count followed by a byte size."""
        count, index = self.var("c"), self.var("j")
        self.emit(depth, f"{target} = {'[]' if key is None else '{}'}")
        self.emit(depth, "while True:")
        self.long(depth + 1, count)
        self.emit(depth + 1, f"if {count} == 0:")
        self.emit(depth + 2, "break")
        self.emit(depth + 1, f"if {count} < 0:")
        self.emit(depth + 2, f"{count} = -{count}")
        self.long(depth + 2, "_")
        self.emit(depth + 1, f"for {index} in range({count}):")
        element = self.var()
        if key is None:
            self.read(item, depth + 2, element)
            self.emit(depth + 2, f"{target}.append({element})")
        else:
            name = self.var()
            self.read(key, depth + 2, name)
            self.read(item, depth + 2, element)
            self.emit(depth + 2, f"{target}[{name}] = {element}")


def compile_reader(writer: Any) -> Reader | None:
    """A reader for the parsed (``fastavro.parse_schema``) writer schema, or None if unsupported."""
    try:
        plan = reader_plan(writer)
    except Unsupported:
        return None
    compiler = _Compiler()
    compiler.read(plan, 1, "value")
    source = "\n".join(["def read(data, p):", "    end = len(data)", *compiler.lines, "    return value, p"])
    namespace: dict[str, Any] = {"read_long": read_long, **compiler.consts}
    exec(compile(source, "<avro reader>", "exec"), namespace)  # noqa: S102 - our own generated code
    reader: Reader = namespace["read"]
    return reader
