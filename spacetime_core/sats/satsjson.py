"""SATS-JSON: the JSON forms of SATS types and values used over HTTP (http-api.md section 4).

Two serialisers, as upstream has them:

* **typed** (schema-driven): products are objects keyed by field name, sums ``{"Variant": payload}``,
  ``Option`` is ``{"some": x}`` / ``{"none": []}``, special types are one-field objects
  (``{"__identity__": "0x..."}``).  Used for types (``type_to_json``), module defs and database info.
* **untyped** (value only): products are arrays, sums ``[tag, payload]``, ``u256``/``i256`` are ``"0x..."``
  strings, bytes are hex strings.  Used for ``/sql`` rows and procedure return values (``value_to_json``).

``value_from_json`` reads what ``/call`` accepts (either form, plus a few lenient spellings) into the
Python values of the spacetime_core.sats mapping, ready for the BSATN encoder.

Import-light on purpose (only this package's ``types`` and ``values``): modules may bundle it.
"""

from .types import (
    INT_RANGES,
    TAG_ARRAY,
    TAG_BOOL,
    TAG_F32,
    TAG_F64,
    TAG_I256,
    TAG_PRODUCT,
    TAG_REF,
    TAG_STRING,
    TAG_SUM,
    TAG_U256,
    ArrayType,
    ProductType,
    RefType,
    SumType,
    _primitive_by_tag,
)
from .values import (
    ConnectionId,
    Err,
    Identity,
    Ok,
    ScheduleAt,
    Some,
    SumValue,
    TimeDuration,
    Timestamp,
    Uuid,
)

__all__ = [
    'SatsJsonError', 'type_to_json', 'type_from_json', 'product_type_to_json', 'product_type_from_json',
    'typespace_to_json', 'typespace_from_json', 'value_to_json', 'value_from_json', 'typed_value_to_json',
    'u256_hex',
]

_PRIM_NAMES = {
    4: 'String', 5: 'Bool', 6: 'I8', 7: 'U8', 8: 'I16', 9: 'U16', 10: 'I32', 11: 'U32', 12: 'I64', 13: 'U64',
    14: 'I128', 15: 'U128', 16: 'I256', 17: 'U256', 18: 'F32', 19: 'F64',
}
_PRIM_BY_NAME = {v: k for k, v in _PRIM_NAMES.items()}


class SatsJsonError(ValueError):
    """A JSON value does not fit the SATS type (or a JSON type is malformed); the message has a path."""


def _err(path, msg):
    return SatsJsonError(f'{msg} (at {path})' if path else msg)


def _resolve(t, ts):
    if t.tag == TAG_REF:
        if ts is None:
            raise SatsJsonError(f'type {t!r} needs a typespace')
        return ts.resolve(t)
    return t


def u256_hex(n):
    """Upstream's JSON form of a u256/i256: ``0x`` hex without leading zeros, ``-`` before negatives."""
    return f'-0x{-n:x}' if n < 0 else f'0x{n:x}'


# --------------------------------------------------------------------------------------------- types

def _name_json(name):
    return {'none': []} if name is None else {'some': name}


def type_to_json(t):
    """An AlgebraicType as typed SATS-JSON: ``{"U32": []}``, ``{"Ref": 3}``, ``{"Product": {...}}`` ..."""
    tag = t.tag
    if tag == TAG_REF:
        return {'Ref': t.index}
    if tag == TAG_PRODUCT:
        return {'Product': product_type_to_json(t)}
    if tag == TAG_SUM:
        return {'Sum': {'variants': [{'name': _name_json(n), 'algebraic_type': type_to_json(v)}
                                     for n, v in t.elements]}}
    if tag == TAG_ARRAY:
        return {'Array': type_to_json(t.elem)}
    return {_PRIM_NAMES[tag]: []}


def product_type_to_json(t):
    return {'elements': [{'name': _name_json(n), 'algebraic_type': type_to_json(v)} for n, v in t.elements]}


def typespace_to_json(ts):
    return {'types': [type_to_json(t) for t in ts.types]}


def _one_key(obj, what):
    if not isinstance(obj, dict) or len(obj) != 1:
        raise SatsJsonError(f'{what} must be an object with exactly one key, got {obj!r}')
    return next(iter(obj.items()))


def _name_from_json(obj):
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    k, v = _one_key(obj, 'an element name')
    if k == 'some':
        return v
    if k == 'none':
        return None
    raise SatsJsonError(f'bad element name {obj!r}')


def _elements_from_json(items):
    if not isinstance(items, list):
        raise SatsJsonError(f'elements/variants must be a list, got {items!r}')
    return [(_name_from_json(e.get('name')), type_from_json(e['algebraic_type'])) for e in items]


def type_from_json(obj):
    """Inverse of ``type_to_json``."""
    k, v = _one_key(obj, 'an AlgebraicType')
    if k == 'Ref':
        return RefType(v)
    if k == 'Product':
        return product_type_from_json(v)
    if k == 'Sum':
        return SumType(_elements_from_json(v['variants']))
    if k == 'Array':
        return ArrayType(type_from_json(v))
    if k in _PRIM_BY_NAME:
        return _primitive_by_tag(_PRIM_BY_NAME[k])
    raise SatsJsonError(f'unknown AlgebraicType variant {k!r}')


def product_type_from_json(obj):
    return ProductType(_elements_from_json(obj['elements']))


def typespace_from_json(obj):
    from .types import Typespace

    return Typespace([type_from_json(t) for t in obj['types']])


# ------------------------------------------------------------------------------------ untyped values

def value_to_json(t, v, ts=None):
    """A Python value of type ``t`` as untyped SATS-JSON (what ``/sql`` rows and procedure results use)."""
    t = _resolve(t, ts)
    tag = t.tag
    s = t.special
    if s is not None:
        return _special_to_json(t, s, v, ts, False)
    if tag == TAG_PRODUCT:
        return [value_to_json(et, x, ts) for (_, et), x in zip(t.elements, _product_fields(t, v))]
    if tag == TAG_SUM:
        i, payload = _sum_parts(t, v)
        return [i, value_to_json(t.elements[i][1], payload, ts)]
    if tag == TAG_ARRAY:
        if t.elem.tag == 7:  # Array<U8>
            return bytes(v).hex()
        return [value_to_json(t.elem, x, ts) for x in v]
    if tag in (TAG_U256, TAG_I256):
        return u256_hex(int(v))
    if tag in (TAG_F32, TAG_F64):
        return float(v)
    return v


def _product_fields(t, v):
    if isinstance(v, (tuple, list)):
        return v
    if isinstance(v, dict):
        return [v[n] for n, _ in t.elements]
    return [getattr(v, n) for n, _ in t.elements]


def _sum_parts(t, v):
    if isinstance(v, SumValue):
        return v.tag, v.value
    i = getattr(v, '_tag_index', None)
    if i is None:
        raise SatsJsonError(f'{v!r} is not a value of {t!r}')
    payload = t.elements[i][1]
    if payload.special == 'unit':
        return i, ()
    return i, v.value


def _special_to_json(t, s, v, ts, typed):
    if s == 'unit':
        return []
    if s == 'identity':
        x = u256_hex(v.to_u256() if isinstance(v, Identity) else int(v))
        return {'__identity__': x} if typed else [x]
    if s == 'connection_id':
        x = v.to_u128() if isinstance(v, ConnectionId) else int(v)
        return {'__connection_id__': x} if typed else [x]
    if s == 'timestamp':
        x = v.to_micros() if isinstance(v, Timestamp) else int(v)
        return {'__timestamp_micros_since_unix_epoch__': x} if typed else [x]
    if s == 'time_duration':
        x = v.to_micros() if isinstance(v, TimeDuration) else int(v)
        return {'__time_duration_micros__': x} if typed else [x]
    if s == 'uuid':
        x = v.to_u128() if isinstance(v, Uuid) else int(v)
        return {'__uuid__': x} if typed else [x]
    enc = typed_value_to_json if typed else value_to_json
    if s == 'option':
        if v is None:
            return {'none': []} if typed else [1, []]
        if isinstance(v, Some):
            v = v.value
        x = enc(t.elements[0][1], v, ts)
        return {'some': x} if typed else [0, x]
    if s == 'result':
        i = 1 if isinstance(v, Err) else 0
        x = enc(t.elements[i][1], v.value if isinstance(v, (Ok, Err)) else v, ts)
        return {t.elements[i][0]: x} if typed else [i, x]
    if s == 'schedule_at':
        i = v._tag_index
        x = enc(t.elements[i][1], v.value, ts)
        return {t.elements[i][0]: x} if typed else [i, x]
    if s == 'never':
        raise SatsJsonError('the never type has no values')
    raise SatsJsonError(f'unknown special type {s}')


def typed_value_to_json(t, v, ts=None):
    """A Python value as typed SATS-JSON (objects keyed by field / variant names)."""
    t = _resolve(t, ts)
    tag = t.tag
    s = t.special
    if s is not None:
        return _special_to_json(t, s, v, ts, True)
    if tag == TAG_PRODUCT:
        return {(n if n is not None else str(i)): typed_value_to_json(et, x, ts)
                for i, ((n, et), x) in enumerate(zip(t.elements, _product_fields(t, v)))}
    if tag == TAG_SUM:
        i, payload = _sum_parts(t, v)
        n = t.elements[i][0]
        return {(n if n is not None else str(i)): typed_value_to_json(t.elements[i][1], payload, ts)}
    if tag == TAG_ARRAY:
        if t.elem.tag == 7:
            return bytes(v).hex()
        return [typed_value_to_json(t.elem, x, ts) for x in v]
    if tag in (TAG_U256, TAG_I256):
        return u256_hex(int(v))
    if tag in (TAG_F32, TAG_F64):
        return float(v)
    return v


# ------------------------------------------------------------------------------------- JSON -> value

def value_from_json(t, obj, ts=None, path=''):
    """Read a SATS-JSON value (typed or untyped form, see http-api.md section 4 'Accepted on input') of
    type ``t`` into the Python value the BSATN encoder takes.  Raises SatsJsonError naming the path."""
    t = _resolve(t, ts)
    tag = t.tag
    s = t.special
    if s is not None:
        return _special_from_json(t, s, obj, ts, path)
    if tag == TAG_PRODUCT:
        return _product_from_json(t, obj, ts, path)
    if tag == TAG_SUM:
        i, payload = _sum_from_json(t, obj, path)
        pt = _resolve(t.elements[i][1], ts)
        vname = t.elements[i][0]  # the path names the variant (category.furniture), its tag when it has none
        return SumValue(i, None if pt.special == 'unit'
                        else value_from_json(pt, payload, ts, f'{path}.{vname if vname else i}'))
    if tag == TAG_ARRAY:
        if t.elem.tag == 7:
            return _bytes_from_json(obj, path)
        if not isinstance(obj, list):
            raise _err(path, f'expected an array, got {_show(obj)}')
        return [value_from_json(t.elem, x, ts, f'{path}[{i}]') for i, x in enumerate(obj)]
    if tag == TAG_STRING:
        if not isinstance(obj, str):
            raise _err(path, f'expected a string, got {_show(obj)}')
        return obj
    if tag == TAG_BOOL:
        if not isinstance(obj, bool):
            raise _err(path, f'expected true or false, got {_show(obj)}')
        return obj
    if tag in (TAG_F32, TAG_F64):
        if isinstance(obj, bool) or not isinstance(obj, (int, float)):
            if isinstance(obj, str) and obj.lower() in ('nan', 'inf', '-inf', 'infinity', '-infinity'):
                return float(obj)
            raise _err(path, f'expected a number, got {_show(obj)}')
        return float(obj)
    return _int_from_json(tag, obj, path)


def _show(obj):
    r = repr(obj) if not isinstance(obj, (dict, list)) else type(obj).__name__
    return r if len(r) <= 60 else r[:57] + '...'


def _int_from_json(tag, obj, path):
    if isinstance(obj, bool):
        raise _err(path, f'expected an integer, got {obj!r}')
    if isinstance(obj, float):
        if not obj.is_integer():
            raise _err(path, f'expected an integer, got {obj!r}')
        obj = int(obj)
    elif isinstance(obj, str):
        obj = _parse_int_str(obj, path)
    elif not isinstance(obj, int):
        raise _err(path, f'expected an integer, got {_show(obj)}')
    lo, hi = INT_RANGES[tag]
    if not lo <= obj <= hi:
        raise _err(path, f'{obj} is out of range for {_PRIM_NAMES[tag]}')
    return obj


def _parse_int_str(s, path):
    t = s.strip().replace('_', '')
    neg = t.startswith('-')
    body = t[1:] if neg or t.startswith('+') else t
    try:
        n = int(body[2:], 16) if body[:2] in ('0x', '0X') else int(body, 10)
    except ValueError:
        raise _err(path, f'expected an integer, got {s!r}') from None
    return -n if neg else n


def _bytes_from_json(obj, path):
    if isinstance(obj, str):
        h = obj[2:] if obj[:2] in ('0x', '0X') else obj
        try:
            return bytes.fromhex(h)
        except ValueError:
            raise _err(path, f'expected a hex string of bytes, got {_show(obj)}') from None
    if isinstance(obj, list) and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 256 for x in obj):
        return bytes(obj)
    raise _err(path, f'expected a hex string of bytes, got {_show(obj)}')


def _product_from_json(t, obj, ts, path):
    els = t.elements
    if isinstance(obj, list):
        if len(obj) != len(els):
            raise _err(path, f'expected {len(els)} element(s), got {len(obj)}')
        vals = obj
    elif isinstance(obj, dict):
        names = [n for n, _ in els]
        extra = [k for k in obj if k not in names]
        if extra:
            raise _err(path, f'unknown field {extra[0]!r} (expected {", ".join(str(n) for n in names)})')
        missing = [n for n in names if n not in obj]
        if missing:
            raise _err(path, f'missing field {missing[0]!r}')
        vals = [obj[n] for n in names]
    else:
        raise _err(path, f'expected an array or an object, got {_show(obj)}')
    return tuple(value_from_json(et, x, ts, f'{path}.{n}' if n else f'{path}[{i}]')
                 for i, ((n, et), x) in enumerate(zip(els, vals)))


def _sum_from_json(t, obj, path):
    """(variant index, payload JSON) of a sum given as {"name": v}, {"<tag>": v}, [tag, v] or a bare
    variant name for unit variants."""
    els = t.elements
    if isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], int) and not isinstance(obj[0], bool):
        i, payload = obj
    elif isinstance(obj, dict) and len(obj) == 1:
        k, payload = next(iter(obj.items()))
        i = _variant_index(t, k, path)
    elif isinstance(obj, str):
        i, payload = _variant_index(t, obj, path), []
    else:
        names = ', '.join(str(n) for n, _ in els)
        raise _err(path, f'expected a sum value like {{"variant": value}} or [tag, value] ({names}), '
                         f'got {_show(obj)}')
    if not 0 <= i < len(els):
        raise _err(path, f'variant tag {i} out of range (the sum has {len(els)} variants)')
    return i, payload


def _variant_index(t, k, path):
    for i, (n, _) in enumerate(t.elements):
        if n == k:
            return i
    if k.isdigit():
        return int(k)
    raise _err(path, f'unknown variant {k!r} (expected one of {", ".join(str(n) for n, _ in t.elements)})')


def _unwrap_one(obj, field, path):
    """A special type's inner value: given bare, as [x] or as {field: x}."""
    if isinstance(obj, list):
        if len(obj) != 1:
            raise _err(path, f'expected a one-element array, got {len(obj)} elements')
        return obj[0]
    if isinstance(obj, dict):
        if set(obj) != {field}:
            raise _err(path, f'expected {{"{field}": ...}}, got keys {sorted(obj)}')
        return obj[field]
    return obj


def _special_from_json(t, s, obj, ts, path):
    if s == 'unit':
        if obj in ([], {}, None):
            return ()
        raise _err(path, f'expected [] for unit, got {_show(obj)}')
    if s == 'identity':
        x = _unwrap_one(obj, '__identity__', path)
        if isinstance(x, str):
            h = x[2:] if x[:2] in ('0x', '0X') else x
            try:
                return Identity.from_u256(int(h, 16))
            except (ValueError, OverflowError):
                raise _err(path, f'expected an identity as hex, got {x!r}') from None
        return Identity.from_u256(_int_from_json(TAG_U256, x, path))
    if s == 'connection_id':
        x = _unwrap_one(obj, '__connection_id__', path)
        if isinstance(x, str) and len(x.removeprefix('0x')) == 32:
            return ConnectionId.from_hex(x)
        return ConnectionId.from_u128(_int_from_json(15, x, path))
    if s == 'timestamp':
        x = _unwrap_one(obj, '__timestamp_micros_since_unix_epoch__', path)
        if isinstance(x, str) and ('T' in x or ' ' in x.strip()):
            try:
                return Timestamp.from_iso(x)
            except (ValueError, TypeError):
                raise _err(path, f'expected a timestamp, got {x!r}') from None
        return Timestamp(_int_from_json(12, x, path))
    if s == 'time_duration':
        return TimeDuration(_int_from_json(12, _unwrap_one(obj, '__time_duration_micros__', path), path))
    if s == 'uuid':
        x = _unwrap_one(obj, '__uuid__', path)
        if isinstance(x, str) and '-' in x:
            try:
                return Uuid.parse(x)
            except ValueError:
                raise _err(path, f'expected a UUID, got {x!r}') from None
        return Uuid(_int_from_json(15, x, path))
    if s == 'option':
        if obj is None:
            return None
        i, payload = _sum_from_json(t, obj, path)
        if i == 1:
            return None
        inner = _resolve(t.elements[0][1], ts)
        v = value_from_json(inner, payload, ts, f'{path}.some')
        return Some(v) if inner.special == 'option' else v
    if s == 'result':
        i, payload = _sum_from_json(t, obj, path)
        v = value_from_json(t.elements[i][1], payload, ts, f'{path}.{t.elements[i][0]}')
        return Err(v) if i else Ok(v)
    if s == 'schedule_at':
        i, payload = _sum_from_json(t, obj, path)
        v = value_from_json(t.elements[i][1], payload, ts, f'{path}.{t.elements[i][0]}')
        return ScheduleAt(i, v)
    raise _err(path, f'the type {t!r} has no JSON values')
