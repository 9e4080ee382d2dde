"""BSATN encoding of *types* (AlgebraicType as a value, bsatn.md section 5).

* primitive: its tag byte; ``Ref(n)``: ``00`` + u32 n
* ``Sum``: ``01`` + SumType; ``Product``: ``02`` + ProductType
* ``Array(elem)``: ``03`` + the element type (no wrapper)
* ProductType / SumType: u32 count, then per element ``name: Option<String>``
  (``00`` + string or ``01``) followed by the element type
* Typespace: u32 count + types
"""

import struct

from .types import (
    PRIMITIVES,
    TAG_ARRAY,
    TAG_PRODUCT,
    TAG_REF,
    TAG_SUM,
    ArrayType,
    BsatnError,
    ProductType,
    RefType,
    SumType,
    Typespace,
)

_U32 = struct.Struct('<I')
_PRIM = {p.tag: p for p in PRIMITIVES}


def _write_type(t, out):
    tag = t.tag
    if tag == TAG_REF:
        out.append(0)
        out += _U32.pack(t.index)
    elif tag == TAG_SUM or tag == TAG_PRODUCT:
        out.append(tag)
        _write_elements(t.elements, out)
    elif tag == TAG_ARRAY:
        out.append(TAG_ARRAY)
        _write_type(t.elem, out)
    else:
        out.append(tag)


def _write_elements(elements, out):
    out += _U32.pack(len(elements))
    for name, et in elements:
        if name is None:
            out.append(1)
        else:
            b = name.encode('utf-8')
            out.append(0)
            out += _U32.pack(len(b))
            out += b
        _write_type(et, out)


def encode_type(t):
    """BSATN bytes of the AlgebraicType ``t``."""
    out = bytearray()
    _write_type(t, out)
    return bytes(out)


def encode_product_type(t):
    """A bare ProductType (no leading ``02``), e.g. reducer params."""
    if t.tag != TAG_PRODUCT:
        raise TypeError(f'encode_product_type expects a ProductType, got {t!r}')
    out = bytearray()
    _write_elements(t.elements, out)
    return bytes(out)


def encode_sum_type(t):
    """A bare SumType (no leading ``01``)."""
    if t.tag != TAG_SUM:
        raise TypeError(f'encode_sum_type expects a SumType, got {t!r}')
    out = bytearray()
    _write_elements(t.elements, out)
    return bytes(out)


def encode_typespace(ts):
    types = ts.types if isinstance(ts, Typespace) else list(ts)
    out = bytearray(_U32.pack(len(types)))
    for i, t in enumerate(types):
        if t is None:
            raise BsatnError(f'typespace slot {i} was reserved but never filled')
        _write_type(t, out)
    return bytes(out)


def _need(buf, off, k, what):
    if off + k > len(buf):
        left = max(len(buf) - off, 0)
        raise BsatnError(f'BSATN decode error at offset {off}: unexpected end of input reading {what}: '
                         f'need {k} bytes, {left} left')


def _read_u32(buf, off, what):
    _need(buf, off, 4, what)
    return _U32.unpack_from(buf, off)[0], off + 4


_MAX_DEPTH = 256


def _read_type(buf, off, depth):
    if depth > _MAX_DEPTH:
        raise BsatnError(f'BSATN decode error at offset {off}: type nesting deeper than {_MAX_DEPTH}')
    _need(buf, off, 1, 'AlgebraicType tag')
    tag = buf[off]
    off += 1
    if tag == TAG_REF:
        n, off = _read_u32(buf, off, 'Ref index')
        return RefType(n), off
    if tag == TAG_SUM or tag == TAG_PRODUCT:
        els, off = _read_elements(buf, off, depth)
        if tag == TAG_SUM:
            if len(els) > 256:
                raise BsatnError(f'BSATN decode error: sum type with {len(els)} variants (max 256)')
            return SumType(els), off
        return ProductType(els), off
    if tag == TAG_ARRAY:
        et, off = _read_type(buf, off, depth + 1)
        return ArrayType(et), off
    p = _PRIM.get(tag)
    if p is None:
        raise BsatnError(f'BSATN decode error at offset {off - 1}: invalid AlgebraicType tag {tag} (expected 0..19)')
    return p, off


def _read_elements(buf, off, depth):
    n, off = _read_u32(buf, off, 'element count')
    els = []
    for _ in range(n):
        _need(buf, off, 1, 'element name option tag')
        g = buf[off]
        off += 1
        if g == 0:
            k, off = _read_u32(buf, off, 'element name length')
            _need(buf, off, k, 'element name bytes')
            try:
                name = str(bytes(buf[off:off + k]), 'utf-8')
            except UnicodeDecodeError:
                raise BsatnError(f'BSATN decode error at offset {off}: invalid UTF-8 in element name') from None
            off += k
        elif g == 1:
            name = None
        else:
            raise BsatnError(f'BSATN decode error at offset {off - 1}: invalid Option tag {g} for element name')
        et, off = _read_type(buf, off, depth + 1)
        els.append((name, et))
    return els, off


def decode_type(buf, off=0):
    """Decode an AlgebraicType at ``off``; returns (type, new_offset)."""
    return _read_type(buf, off, 0)


def decode_product_type(buf, off=0):
    els, off = _read_elements(buf, off, 0)
    return ProductType(els), off


def decode_sum_type(buf, off=0):
    els, off = _read_elements(buf, off, 0)
    if len(els) > 256:
        raise BsatnError(f'BSATN decode error: sum type with {len(els)} variants (max 256)')
    return SumType(els), off


def decode_typespace(buf, off=0):
    n, off = _read_u32(buf, off, 'typespace length')
    types = []
    for _ in range(n):
        t, off = _read_type(buf, off, 0)
        types.append(t)
    return Typespace(types), off
