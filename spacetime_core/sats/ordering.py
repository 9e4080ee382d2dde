"""SATS value ordering (bsatn.md section 6) as Python sort keys.

``sort_key(t, ts)`` returns ``key(value) -> comparable`` such that comparing
keys with ``<``/``==`` equals comparing the values in SATS order, and keys are
hashable (equal keys <=> SATS-equal values, e.g. -0.0 == 0.0 and NaN == NaN).
When Python's own ordering of the decoded values already matches (ints, str,
bool, bytes and tuples of those) it returns ``identity_key`` itself, so
callers can skip the call: ``if key is identity_key``.
"""

from .codec import _entry, variant_classes
from .types import (
    K_CONNECTION_ID,
    K_IDENTITY,
    K_NEVER,
    K_OPTION,
    K_RESULT,
    K_SCHEDULE_AT,
    K_TIME_DURATION,
    K_TIMESTAMP,
    K_UNIT,
    K_UUID,
    TAG_ARRAY,
    TAG_F32,
    TAG_F64,
    TAG_PRODUCT,
    TAG_REF,
    TAG_SUM,
    TAG_U8,
    BsatnError,
    attr_expr,
)
from .values import Err, Ok, Some, SumValue


def identity_key(v):
    return v


_NAN_KEY = (1, 0.0)


def _float_key(v):
    # total order: -inf < ... < -0.0 == 0.0 < ... < inf < NaN (all NaNs equal)
    if v != v:
        return _NAN_KEY
    return (0, v + 0.0)


def _identity_k(v):
    return v._id_b[::-1]


def _connection_id_k(v):
    return v._cid_b[::-1]


def _timestamp_k(v):
    return v._tsm


def _time_duration_k(v):
    return v._tdm


def _uuid_k(v):
    return v._u


def _schedule_at_k(v):
    return (v._si, v._sm)


def _unit_k(v):
    return ()


def _never_k(v):
    raise BsatnError('the never type has no values')


_SPECIAL_KEYS = {
    K_IDENTITY: _identity_k, K_CONNECTION_ID: _connection_id_k, K_TIMESTAMP: _timestamp_k,
    K_TIME_DURATION: _time_duration_k, K_UUID: _uuid_k, K_SCHEDULE_AT: _schedule_at_k,
    K_UNIT: _unit_k, K_NEVER: _never_k,
}


def sort_key(t, typespace=None):
    """Key function for values of type ``t`` (see module docstring)."""
    if t.tag == TAG_REF:
        return _ref_key(t, typespace)
    e = _entry(t, typespace)
    k = e.key
    if k is None:
        k = e.key = _compile_key(t, typespace)
    return k


def _ref_key(t, ts):
    if ts is None:
        raise BsatnError(f'type {t!r} is a Ref but no typespace was given')
    cache = ts._ref_cache
    ck = ('key', t.index)
    f = cache.get(ck)
    if f is not None:
        return f
    cell = [None]

    def tramp(v):
        return cell[0](v)
    cache[ck] = tramp
    try:
        real = sort_key(ts.resolve(t), ts)
    except BaseException:
        del cache[ck]
        raise
    cell[0] = real
    cache[ck] = real
    return real


def _compile_key(t, ts):
    tag = t.tag
    if t.is_primitive():
        if tag == TAG_F32 or tag == TAG_F64:
            return _float_key
        return identity_key
    if tag == TAG_ARRAY:
        et = ts.resolve(t.elem) if t.elem.tag == TAG_REF else t.elem
        if et.tag == TAG_U8:
            return identity_key
        ek = sort_key(t.elem, ts)
        if ek is identity_key:
            return tuple

        def array_key(v):
            return tuple(map(ek, v))
        return array_key
    sp = t.special
    if sp is not None:
        k = _SPECIAL_KEYS.get(sp)
        if k is not None:
            return k
        if sp == K_OPTION:
            ik = sort_key(t.elements[0][1], ts)

            def option_key(v):
                if v is None:
                    return (1,)
                if v.__class__ is Some:
                    v = v.value
                return (0, ik(v))
            return option_key
        if sp == K_RESULT:
            kok = sort_key(t.elements[0][1], ts)
            kerr = sort_key(t.elements[1][1], ts)

            def result_key(v):
                c = v.__class__
                if c is Ok:
                    return (0, kok(v.value))
                if c is Err:
                    return (1, kerr(v.value))
                raise BsatnError(f'expected Ok or Err, got {v!r}')
            return result_key
    if tag == TAG_PRODUCT:
        return _product_key(t, ts)
    if tag == TAG_SUM:
        return _sum_key(t, ts)
    raise TypeError(f'no sort key for {t!r}')  # pragma: no cover


def _product_key(t, ts):
    keys = [sort_key(et, ts) for _, et in t.elements]
    if t.cls is None:
        if all(k is identity_key for k in keys):
            return identity_key
        src_get = [f'v[{i}]' for i in range(len(keys))]
    else:
        src_get = [attr_expr('v', n) for n, _ in t.elements]
    ns = {}
    exprs = []
    for i, (k, g) in enumerate(zip(keys, src_get, strict=False)):
        if k is identity_key:
            exprs.append(g)
        else:
            ns[f'K{i}'] = k
            exprs.append(f'K{i}({g})')
    src = 'def key(v):\n    return ({},)\n'.format(', '.join(exprs)) if exprs else 'def key(v):\n    return ()\n'
    exec(compile(src, '<sats key>', 'exec'), ns)
    return ns['key']


def _sum_key(t, ts):
    from .codec import _is_unit_payload
    keys = []
    for _, vt in t.elements:
        keys.append(None if _is_unit_payload(vt, ts) else sort_key(vt, ts))
    keys = tuple(keys)
    if t.cls is None:
        def sum_key(v):
            g = v.tag
            k = keys[g]
            if k is None:
                return (g,)
            return (g, k(v.value))
        return sum_key
    tagmap = variant_classes(t.cls)

    def bound_sum_key(v):
        g = tagmap.get(v.__class__)
        if g is None:
            if v.__class__ is not SumValue:
                raise BsatnError(f'expected a variant of {t.cls.__name__}, got {v!r}')
            g = v.tag
        k = keys[g]
        if k is None:
            return (g,)
        return (g, k(v.value))
    return bound_sum_key
