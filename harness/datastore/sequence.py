"""Auto-increment sequences.

A sequence is not transactional: a value handed out inside a transaction that
is rolled back is never handed out again (upstream behaves the same way), so
the only state is ``value``, the next number to hand out.
"""

from __future__ import annotations

from .errors import SchemaError
from .schema import I128_MAX, SequenceSchema


class Sequence:
    """Runtime state of one ``SequenceSchema``; wraps from max to min (or min to max when decrementing)."""

    __slots__ = ("column", "increment", "max_value", "min_value", "schema", "start", "value")

    def __init__(self, schema: SequenceSchema) -> None:
        inc = schema.increment
        lo = 1 if schema.min_value is None else schema.min_value
        hi = I128_MAX if schema.max_value is None else schema.max_value
        if inc == 0:
            raise SchemaError(f"sequence on column {schema.column}: increment must not be 0")
        if lo > hi:
            raise SchemaError(f"sequence on column {schema.column}: min {lo} > max {hi}")
        start = schema.start
        if start is None:
            # Default start is 1 (upstream); clamp into [min, max] when the def moved the range.
            start = 1 if lo <= 1 <= hi else (lo if inc > 0 else hi)
        if not lo <= start <= hi:
            raise SchemaError(f"sequence on column {schema.column}: start {start} outside [{lo}, {hi}]")
        self.schema = schema
        self.column = schema.column
        self.start = start
        self.min_value = lo
        self.max_value = hi
        self.increment = inc
        self.value = start

    def next(self) -> int:
        """Hand out the next value and advance, wrapping at the ends of the range."""
        v = self.value
        n = v + self.increment
        if n > self.max_value:
            n = self.min_value
        elif n < self.min_value:
            n = self.max_value
        self.value = n
        return v

    def set_value(self, value: int) -> None:
        """Restore the next value to hand out (snapshot/replay)."""
        if not self.min_value <= value <= self.max_value:
            raise SchemaError(f"sequence value {value} outside [{self.min_value}, {self.max_value}]")
        self.value = value
