"""Python value classes for the SATS special types and generic sums.

All classes here are immutable (``__setattr__`` raises), hashable and use
``__slots__``.  The codec builds instances through ``_mk_*`` helpers that
bypass ``__init__`` validation.
"""

from .types import (
    CONNECTION_ID,
    IDENTITY,
    SCHEDULE_AT,
    TIME_DURATION,
    TIMESTAMP,
    UUID,
)

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_new = object.__new__


def _frozen(self, name, value):
    raise AttributeError(f'{type(self).__name__} is immutable')


def _check_i64(v, what):
    if v.__class__ is not int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f'{what} must be an int number of microseconds, got {v!r}')
        v = int(v)
    if not _I64_MIN <= v <= _I64_MAX:
        raise OverflowError(f'{what} {v} out of i64 range')
    return v


def _span_micros(v, what):
    """Microseconds of a TimeDuration, a `datetime.timedelta` (duck-typed: the module need not import
    datetime) or an int number of microseconds."""
    if v.__class__ is TimeDuration:
        return v._tdm
    if hasattr(v, 'total_seconds') and hasattr(v, 'microseconds'):
        return _check_i64((v.days * 86_400 + v.seconds) * 1_000_000 + v.microseconds, what)
    return _check_i64(v, what)


def _parse_hex(s, nbytes, what):
    if not isinstance(s, str):
        raise TypeError(f'{what}.from_hex expects str, got {s!r}')
    h = s[2:] if s[:2] in ('0x', '0X') else s
    if len(h) != 2 * nbytes:
        raise ValueError(f'{what} hex must be {2 * nbytes} hex characters, got {len(h)}')
    try:
        return bytes.fromhex(h)
    except ValueError:
        raise ValueError(f'invalid {what} hex string {s!r}') from None


# ---------------------------------------------------------------------------
# Identity / ConnectionId: fixed-size LE byte strings ordered as integers.
# ---------------------------------------------------------------------------

class Identity:
    """A 256-bit identity.  Stored as its 32 little-endian BSATN bytes;
    displayed as 64 lower-case hex digits, most significant byte first
    (upstream ``to_hex``).  Ordered by the u256 value.

    ``Identity(x)``: ``x`` is an int (the u256 value), a 64-digit hex str, or
    32 bytes in little-endian (BSATN) order."""

    __slots__ = ('_id_b',)
    __setattr__ = _frozen
    __sats_type__ = IDENTITY
    _NBYTES = 32

    def __init__(self, value):
        object.__setattr__(self, '_id_b', _coerce_bytes(value, 32, 'Identity'))

    @classmethod
    def from_bytes(cls, b):
        """From 32 little-endian bytes (the BSATN form)."""
        return cls(_as_fixed_bytes(b, 32, 'Identity'))

    @classmethod
    def from_be_bytes(cls, b):
        return cls(_as_fixed_bytes(b, 32, 'Identity')[::-1])

    @classmethod
    def from_hex(cls, s):
        return cls(_parse_hex(s, 32, 'Identity')[::-1])

    @classmethod
    def from_u256(cls, n):
        return cls(_int_to_le(n, 32, 'Identity'))

    def to_bytes(self):
        """32 little-endian bytes (BSATN form)."""
        return self._id_b

    def to_be_bytes(self):
        return self._id_b[::-1]

    def to_u256(self):
        return int.from_bytes(self._id_b, 'little')

    __int__ = to_u256

    def to_hex(self):
        return self._id_b[::-1].hex()

    def to_abbreviated_hex(self):
        return self._id_b[:-9:-1].hex()

    def is_zero(self):
        return self._id_b == _Z32

    def __str__(self):
        return self._id_b[::-1].hex()

    def __repr__(self):
        return f'Identity({self.to_hex()!r})'

    def __eq__(self, other):
        if other.__class__ is Identity:
            return self._id_b == other._id_b
        return NotImplemented

    def __ne__(self, other):
        if other.__class__ is Identity:
            return self._id_b != other._id_b
        return NotImplemented

    def __hash__(self):
        return hash(self._id_b)

    def __lt__(self, other):
        if other.__class__ is not Identity:
            return NotImplemented
        return self._id_b[::-1] < other._id_b[::-1]

    def __le__(self, other):
        if other.__class__ is not Identity:
            return NotImplemented
        return self._id_b[::-1] <= other._id_b[::-1]

    def __gt__(self, other):
        if other.__class__ is not Identity:
            return NotImplemented
        return self._id_b[::-1] > other._id_b[::-1]

    def __ge__(self, other):
        if other.__class__ is not Identity:
            return NotImplemented
        return self._id_b[::-1] >= other._id_b[::-1]

    def __reduce__(self):
        return (Identity, (self._id_b,))


class ConnectionId:
    """A 128-bit connection id.  Same conventions as ``Identity`` (16 LE bytes,
    big-endian hex display, ordered by the u128 value)."""

    __slots__ = ('_cid_b',)
    __setattr__ = _frozen
    __sats_type__ = CONNECTION_ID

    def __init__(self, value):
        object.__setattr__(self, '_cid_b', _coerce_bytes(value, 16, 'ConnectionId'))

    @classmethod
    def from_bytes(cls, b):
        return cls(_as_fixed_bytes(b, 16, 'ConnectionId'))

    @classmethod
    def from_be_bytes(cls, b):
        return cls(_as_fixed_bytes(b, 16, 'ConnectionId')[::-1])

    @classmethod
    def from_hex(cls, s):
        return cls(_parse_hex(s, 16, 'ConnectionId')[::-1])

    @classmethod
    def from_u128(cls, n):
        return cls(_int_to_le(n, 16, 'ConnectionId'))

    def to_bytes(self):
        return self._cid_b

    def to_be_bytes(self):
        return self._cid_b[::-1]

    def to_u128(self):
        return int.from_bytes(self._cid_b, 'little')

    __int__ = to_u128

    def to_hex(self):
        return self._cid_b[::-1].hex()

    def to_abbreviated_hex(self):
        return self._cid_b[:-9:-1].hex()

    def is_zero(self):
        return self._cid_b == _Z16

    def none_if_zero(self):
        return None if self._cid_b == _Z16 else self

    def __str__(self):
        return self._cid_b[::-1].hex()

    def __repr__(self):
        return f'ConnectionId({self.to_hex()!r})'

    def __eq__(self, other):
        if other.__class__ is ConnectionId:
            return self._cid_b == other._cid_b
        return NotImplemented

    def __ne__(self, other):
        if other.__class__ is ConnectionId:
            return self._cid_b != other._cid_b
        return NotImplemented

    def __hash__(self):
        return hash(self._cid_b)

    def __lt__(self, other):
        if other.__class__ is not ConnectionId:
            return NotImplemented
        return self._cid_b[::-1] < other._cid_b[::-1]

    def __le__(self, other):
        if other.__class__ is not ConnectionId:
            return NotImplemented
        return self._cid_b[::-1] <= other._cid_b[::-1]

    def __gt__(self, other):
        if other.__class__ is not ConnectionId:
            return NotImplemented
        return self._cid_b[::-1] > other._cid_b[::-1]

    def __ge__(self, other):
        if other.__class__ is not ConnectionId:
            return NotImplemented
        return self._cid_b[::-1] >= other._cid_b[::-1]

    def __reduce__(self):
        return (ConnectionId, (self._cid_b,))


_Z32 = bytes(32)
_Z16 = bytes(16)


def _as_fixed_bytes(b, n, what):
    if isinstance(b, (bytes, bytearray, memoryview)):
        b = bytes(b)
        if len(b) == n:
            return b
        raise ValueError(f'{what} needs exactly {n} bytes, got {len(b)}')
    raise TypeError(f'{what} needs {n} bytes, got {type(b).__name__!r}')


def _int_to_le(v, n, what):
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f'{what} integer value must be int, got {v!r}')
    if not 0 <= v < (1 << (8 * n)):
        raise OverflowError(f'{what} value out of u{8 * n} range: {v}')
    return v.to_bytes(n, 'little')


def _coerce_bytes(value, n, what):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _as_fixed_bytes(value, n, what)
    if isinstance(value, str):
        return _parse_hex(value, n, what)[::-1]
    if isinstance(value, int) and not isinstance(value, bool):
        return _int_to_le(value, n, what)
    raise TypeError(f'{what}() expects an int, a hex str or {n} LE bytes, got {value!r}')


Identity.ZERO = Identity(0)
ConnectionId.ZERO = ConnectionId(0)


def _mk_identity(b):
    o = _new(Identity)
    _set_id_b(o, b)
    return o


def _mk_connection_id(b):
    o = _new(ConnectionId)
    _set_cid_b(o, b)
    return o


_set_id_b = Identity.__dict__['_id_b'].__set__
_set_cid_b = ConnectionId.__dict__['_cid_b'].__set__


# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------

def _civil_from_days(z):
    """Days since 1970-01-01 -> (year, month, day), proleptic Gregorian."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _to_micros(seconds, what):
    if isinstance(seconds, bool):
        raise TypeError(f'{what}: seconds must be a number, got bool')
    if isinstance(seconds, int):
        return seconds * 1_000_000
    if isinstance(seconds, float):
        if seconds != seconds or seconds in (float('inf'), float('-inf')):
            raise ValueError(f'{what}: seconds must be finite, got {seconds!r}')
        return round(seconds * 1_000_000)
    raise TypeError(f'{what}: seconds must be int or float, got {seconds!r}')


class Timestamp:
    """Microseconds since 1970-01-01T00:00:00Z as a signed i64.

    ``str()`` gives RFC 3339 with microseconds and ``+00:00`` like upstream,
    e.g. ``2024-01-01T00:00:00.000000+00:00``.  ``Timestamp - Timestamp`` is a
    ``TimeDuration``; ``Timestamp +/- TimeDuration`` is a ``Timestamp``."""

    __slots__ = ('_tsm',)
    __setattr__ = _frozen
    __sats_type__ = TIMESTAMP

    def __init__(self, micros=0):
        object.__setattr__(self, '_tsm', _check_i64(micros, 'Timestamp'))

    @property
    def micros(self):
        return self._tsm

    @property
    def micros_since_unix_epoch(self):
        return self._tsm

    @classmethod
    def from_micros(cls, micros):
        return cls(micros)

    @classmethod
    def from_millis(cls, millis):
        return cls(_check_i64(millis, 'Timestamp') * 1000)

    @classmethod
    def from_seconds(cls, seconds):
        return cls(_to_micros(seconds, 'Timestamp.from_seconds'))

    @classmethod
    def from_iso(cls, s):
        """Parse ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)``."""
        return cls(_parse_rfc3339(s))

    def to_micros(self):
        return self._tsm

    def to_millis(self):
        """Whole milliseconds (floor)."""
        return self._tsm // 1000

    def to_seconds(self):
        return self._tsm / 1_000_000

    def since(self, earlier):
        """``self - earlier`` as a TimeDuration."""
        return TimeDuration(self._tsm - earlier._tsm)

    def duration_since(self, earlier):
        return self.since(earlier)

    def isoformat(self):
        secs, us = divmod(self._tsm, 1_000_000)
        days, sod = divmod(secs, 86400)
        y, m, d = _civil_from_days(days)
        hh, rem = divmod(sod, 3600)
        mm, ss = divmod(rem, 60)
        if 0 <= y <= 9999:
            ys = f'{y:04d}'
        else:
            ys = f'{y:+05d}'
        return f'{ys}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{us:06d}+00:00'

    to_rfc3339 = isoformat
    __str__ = isoformat

    def __repr__(self):
        return f'Timestamp({self._tsm})'

    def __add__(self, other):
        if other.__class__ is TimeDuration:
            return Timestamp(self._tsm + other._tdm)
        if hasattr(other, 'total_seconds'):  # datetime.timedelta
            return Timestamp(self._tsm + _span_micros(other, 'Timestamp + timedelta'))
        return NotImplemented

    __radd__ = __add__

    def __sub__(self, other):
        if other.__class__ is TimeDuration:
            return Timestamp(self._tsm - other._tdm)
        if hasattr(other, 'total_seconds'):
            return Timestamp(self._tsm - _span_micros(other, 'Timestamp - timedelta'))
        if other.__class__ is Timestamp:
            return TimeDuration(self._tsm - other._tsm)
        return NotImplemented

    def __eq__(self, other):
        if other.__class__ is Timestamp:
            return self._tsm == other._tsm
        return NotImplemented

    def __ne__(self, other):
        if other.__class__ is Timestamp:
            return self._tsm != other._tsm
        return NotImplemented

    def __hash__(self):
        return hash(('ts', self._tsm))

    def __lt__(self, other):
        if other.__class__ is Timestamp:
            return self._tsm < other._tsm
        return NotImplemented

    def __le__(self, other):
        if other.__class__ is Timestamp:
            return self._tsm <= other._tsm
        return NotImplemented

    def __gt__(self, other):
        if other.__class__ is Timestamp:
            return self._tsm > other._tsm
        return NotImplemented

    def __ge__(self, other):
        if other.__class__ is Timestamp:
            return self._tsm >= other._tsm
        return NotImplemented

    def __reduce__(self):
        return (Timestamp, (self._tsm,))


def _parse_rfc3339(s):
    if not isinstance(s, str):
        raise TypeError(f'Timestamp.from_iso expects str, got {s!r}')
    try:
        date, _, rest = s.partition('T')
        if not rest:
            date, _, rest = s.partition(' ')
        neg_year = date.startswith('-')
        parts = (date[1:] if date[:1] in '+-' else date).split('-')
        y, mo, d = int(parts[0]), int(parts[1]), int(parts[2])
        if neg_year:
            y = -y
        if rest.endswith(('Z', 'z')):
            off = 0
            t = rest[:-1]
        else:
            sign = 1 if rest[-6] == '+' else -1
            if rest[-6] not in '+-' or rest[-3] != ':':
                raise ValueError
            off = sign * (int(rest[-5:-3]) * 3600 + int(rest[-2:]) * 60)
            t = rest[:-6]
        hms, _, frac = t.partition('.')
        hh, mm, ss = (int(x) for x in hms.split(':'))
        us = int((frac + '000000')[:6]) if frac else 0
        if len(parts) != 3 or not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mm < 60 and ss < 61):
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f'invalid RFC 3339 timestamp {s!r}') from None
    secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss - off
    return secs * 1_000_000 + us


class TimeDuration:
    """A signed span of microseconds (i64).  ``str()`` is upstream's Display:
    sign always printed, seconds, 6-digit microseconds (``+1.500000``)."""

    __slots__ = ('_tdm',)
    __setattr__ = _frozen
    __sats_type__ = TIME_DURATION

    def __init__(self, micros=0):
        """``micros``: an int number of microseconds, or a ``datetime.timedelta``."""
        object.__setattr__(self, '_tdm', _span_micros(micros, 'TimeDuration'))

    @property
    def micros(self):
        return self._tdm

    @classmethod
    def from_micros(cls, micros):
        return cls(micros)

    @classmethod
    def from_millis(cls, millis):
        return cls(_check_i64(millis, 'TimeDuration') * 1000)

    @classmethod
    def from_seconds(cls, seconds):
        return cls(_to_micros(seconds, 'TimeDuration.from_seconds'))

    def to_micros(self):
        return self._tdm

    def to_millis(self):
        return self._tdm // 1000 if self._tdm >= 0 else -((-self._tdm) // 1000)

    def to_seconds(self):
        return self._tdm / 1_000_000

    def __str__(self):
        m = self._tdm
        s, us = divmod(abs(m), 1_000_000)
        return f"{'-' if m < 0 else '+'}{s}.{us:06d}"

    def __repr__(self):
        return f'TimeDuration({self._tdm})'

    def __add__(self, other):
        if other.__class__ is TimeDuration:
            return TimeDuration(self._tdm + other._tdm)
        return NotImplemented

    def __sub__(self, other):
        if other.__class__ is TimeDuration:
            return TimeDuration(self._tdm - other._tdm)
        return NotImplemented

    def __neg__(self):
        return TimeDuration(-self._tdm)

    def __pos__(self):
        return self

    def __abs__(self):
        return TimeDuration(abs(self._tdm))

    def __mul__(self, k):
        if isinstance(k, int) and not isinstance(k, bool):
            return TimeDuration(self._tdm * k)
        return NotImplemented

    __rmul__ = __mul__

    def __floordiv__(self, k):
        if isinstance(k, int) and not isinstance(k, bool):
            return TimeDuration(self._tdm // k)
        if k.__class__ is TimeDuration:
            return self._tdm // k._tdm
        return NotImplemented

    def __bool__(self):
        return self._tdm != 0

    def __eq__(self, other):
        if other.__class__ is TimeDuration:
            return self._tdm == other._tdm
        return NotImplemented

    def __ne__(self, other):
        if other.__class__ is TimeDuration:
            return self._tdm != other._tdm
        return NotImplemented

    def __hash__(self):
        return hash(('td', self._tdm))

    def __lt__(self, other):
        if other.__class__ is TimeDuration:
            return self._tdm < other._tdm
        return NotImplemented

    def __le__(self, other):
        if other.__class__ is TimeDuration:
            return self._tdm <= other._tdm
        return NotImplemented

    def __gt__(self, other):
        if other.__class__ is TimeDuration:
            return self._tdm > other._tdm
        return NotImplemented

    def __ge__(self, other):
        if other.__class__ is TimeDuration:
            return self._tdm >= other._tdm
        return NotImplemented

    def __reduce__(self):
        return (TimeDuration, (self._tdm,))


Timestamp.UNIX_EPOCH = Timestamp(0)
TimeDuration.ZERO = TimeDuration(0)

_set_tsm = Timestamp.__dict__['_tsm'].__set__
_set_tdm = TimeDuration.__dict__['_tdm'].__set__


def _mk_timestamp(m):
    o = _new(Timestamp)
    _set_tsm(o, m)
    return o


def _mk_time_duration(m):
    o = _new(TimeDuration)
    _set_tdm(o, m)
    return o


# ---------------------------------------------------------------------------
# Uuid
# ---------------------------------------------------------------------------

class Uuid:
    """A UUID as a u128 whose big-endian bytes are the canonical UUID bytes
    (BSATN therefore carries the textual bytes reversed).  Ordered by the
    u128 value, which equals textual order."""

    __slots__ = ('_u',)
    __setattr__ = _frozen
    __sats_type__ = UUID

    def __init__(self, value):
        if isinstance(value, str):
            value = _parse_uuid(value)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            value = int.from_bytes(_as_fixed_bytes(value, 16, 'Uuid'), 'big')
        elif isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f'Uuid() expects an int (u128), a str or 16 bytes, got {value!r}')
        elif not 0 <= value < (1 << 128):
            raise OverflowError(f'Uuid value out of u128 range: {value}')
        object.__setattr__(self, '_u', int(value))

    @classmethod
    def parse(cls, s):
        """Parse hyphenated, simple (32 hex), ``{...}`` or ``urn:uuid:`` forms."""
        return cls(_parse_uuid(s))

    parse_str = parse

    @classmethod
    def from_u128(cls, n):
        return cls(n)

    @classmethod
    def from_bytes(cls, b):
        """From the 16 canonical (big-endian, textual order) bytes."""
        return cls(int.from_bytes(_as_fixed_bytes(b, 16, 'Uuid'), 'big'))

    @classmethod
    def from_random_bytes(cls, b):
        """UUIDv4 from 16 random bytes (sets the version and variant bits)."""
        b = bytearray(_as_fixed_bytes(b, 16, 'Uuid.from_random_bytes'))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        return cls(int.from_bytes(b, 'big'))

    from_random_bytes_v4 = from_random_bytes

    @classmethod
    def v7(cls, timestamp, counter, random_bytes):
        """UUIDv7 as upstream ``Uuid::from_counter_v7`` (RFC 9562 layout):
        bytes 0-5 = 48-bit unix milliseconds, version 7, a 31-bit counter in
        bytes 7, 9, 10, 11 (bits 30..23, 22..15, 14..7, 6..0 << 1), RFC 4122
        variant in byte 8, 4 random bytes in 12..15 (top bit of byte 12 is 0).
        ``timestamp`` is a Timestamp or int micros (must not be before 1970);
        ``counter`` is masked to 31 bits; the caller increments it."""
        micros = timestamp._tsm if timestamp.__class__ is Timestamp else _check_i64(timestamp, 'Uuid.v7')
        if micros < 0:
            raise ValueError('cannot create a v7 UUID from a timestamp before the Unix epoch')
        if isinstance(counter, bool) or not isinstance(counter, int):
            raise TypeError(f'Uuid.v7 counter must be int, got {counter!r}')
        r = _as_fixed_bytes(random_bytes, 4, 'Uuid.v7 random_bytes')
        ms = (micros // 1000) & 0xFFFFFFFFFFFF
        c = counter & 0x7FFFFFFF
        b = bytearray(16)
        b[0:6] = ms.to_bytes(6, 'big')
        b[6] = 0x70
        b[7] = (c >> 23) & 0xFF
        b[8] = 0x80
        b[9] = (c >> 15) & 0xFF
        b[10] = (c >> 7) & 0xFF
        b[11] = (c & 0x7F) << 1
        b[12] = r[0] & 0x7F
        b[13:16] = r[1:4]
        return cls(int.from_bytes(b, 'big'))

    def to_u128(self):
        return self._u

    as_u128 = to_u128
    __int__ = to_u128

    def to_bytes(self):
        """The 16 canonical (big-endian) bytes."""
        return self._u.to_bytes(16, 'big')

    def version(self):
        """The version nibble (0 for NIL, 4, 7, 15 for MAX, ...)."""
        return (self._u >> 76) & 0xF

    def counter_v7(self):
        """The 31-bit counter of a v7 UUID made by ``v7``."""
        b = self.to_bytes()
        return (b[7] << 23) | (b[9] << 15) | (b[10] << 7) | (b[11] >> 1)

    def __str__(self):
        h = f'{self._u:032x}'
        return f'{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}'

    def __repr__(self):
        return f'Uuid({str(self)!r})'

    def __eq__(self, other):
        if other.__class__ is Uuid:
            return self._u == other._u
        return NotImplemented

    def __ne__(self, other):
        if other.__class__ is Uuid:
            return self._u != other._u
        return NotImplemented

    def __hash__(self):
        return hash(('uuid', self._u))

    def __lt__(self, other):
        if other.__class__ is Uuid:
            return self._u < other._u
        return NotImplemented

    def __le__(self, other):
        if other.__class__ is Uuid:
            return self._u <= other._u
        return NotImplemented

    def __gt__(self, other):
        if other.__class__ is Uuid:
            return self._u > other._u
        return NotImplemented

    def __ge__(self, other):
        if other.__class__ is Uuid:
            return self._u >= other._u
        return NotImplemented

    def __reduce__(self):
        return (Uuid, (self._u,))


def _parse_uuid(s):
    if not isinstance(s, str):
        raise TypeError(f'Uuid.parse expects str, got {s!r}')
    h = s.strip()
    if h[:9].lower() == 'urn:uuid:':
        h = h[9:]
    elif h[:1] == '{' and h[-1:] == '}':
        h = h[1:-1]
    if len(h) == 36:
        if h[8] != '-' or h[13] != '-' or h[18] != '-' or h[23] != '-':
            raise ValueError(f'invalid UUID string {s!r}')
        h = h[:8] + h[9:13] + h[14:18] + h[19:23] + h[24:]
    if len(h) != 32 or not all(c in '0123456789abcdefABCDEF' for c in h):
        raise ValueError(f'invalid UUID string {s!r}')
    return int(h, 16)


Uuid.NIL = Uuid(0)
Uuid.MAX = Uuid((1 << 128) - 1)
_set_u = Uuid.__dict__['_u'].__set__


def _mk_uuid(n):
    o = _new(Uuid)
    _set_u(o, n)
    return o


# ---------------------------------------------------------------------------
# Generic sum-like values
# ---------------------------------------------------------------------------

class _Variant:
    """Base for one-payload tagged values (Some/Ok/Err); ordered by
    (_tag_index, value) like SATS sums."""

    __slots__ = ('value',)
    __match_args__ = ('value',)
    _tag_index = 0

    def __init__(self, value):
        object.__setattr__(self, 'value', value)

    __setattr__ = _frozen

    def __eq__(self, other):
        if isinstance(other, _Variant):
            return self._tag_index == other._tag_index and type(self) is type(other) and self.value == other.value
        return NotImplemented

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash((type(self).__name__, self.value))

    def _cmp_key(self, other):
        if not isinstance(other, _Variant) or type(other)._family is not type(self)._family:
            return None
        return True

    def __lt__(self, other):
        if self._cmp_key(other) is None:
            return NotImplemented
        if self._tag_index != other._tag_index:
            return self._tag_index < other._tag_index
        return self.value < other.value

    def __le__(self, other):
        if self._cmp_key(other) is None:
            return NotImplemented
        return self == other or self < other

    def __gt__(self, other):
        if self._cmp_key(other) is None:
            return NotImplemented
        return other < self

    def __ge__(self, other):
        if self._cmp_key(other) is None:
            return NotImplemented
        return self == other or other < self

    def __repr__(self):
        return f'{type(self).__name__}({self.value!r})'

    def __reduce__(self):
        return (type(self), (self.value,))


class Some(_Variant):
    """Explicit ``some`` for an option; needed only for ``Option<Option<T>>``
    (``Some(None)`` vs ``None``).  Decoders produce it only in that case."""

    __slots__ = ()
    _tag_index = 0
    tag = 'some'


class Ok(_Variant):
    """The ``ok`` variant (tag 0) of a ``Result<T, E>``."""

    __slots__ = ()
    _tag_index = 0
    tag = 'ok'

    def is_ok(self):
        return True

    def is_err(self):
        return False


class Err(_Variant):
    """The ``err`` variant (tag 1) of a ``Result<T, E>``."""

    __slots__ = ()
    _tag_index = 1
    tag = 'err'

    def is_ok(self):
        return False

    def is_err(self):
        return True


Some._family = Some
Ok._family = Ok
Err._family = Ok


def _mk_some(v):
    o = _new(Some)
    _set_value(o, v)
    return o


def _mk_ok(v):
    o = _new(Ok)
    _set_value(o, v)
    return o


def _mk_err(v):
    o = _new(Err)
    _set_value(o, v)
    return o


_set_value = _Variant.__dict__['value'].__set__


class SumValue:
    """A value of a sum type with no bound Python class: ``tag`` is the
    variant index (0..255), ``value`` the payload (None for unit variants).
    Ordered by (tag, value)."""

    __slots__ = ('tag', 'value')
    __match_args__ = ('tag', 'value')
    __setattr__ = _frozen

    def __init__(self, tag, value=None):
        if isinstance(tag, bool) or not isinstance(tag, int) or not 0 <= tag <= 255:
            raise ValueError(f'SumValue tag must be an int in 0..255, got {tag!r}')
        object.__setattr__(self, 'tag', tag)
        object.__setattr__(self, 'value', value)

    def __eq__(self, other):
        if other.__class__ is SumValue:
            return self.tag == other.tag and self.value == other.value
        return NotImplemented

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash(('sum', self.tag, self.value))

    def __lt__(self, other):
        if other.__class__ is not SumValue:
            return NotImplemented
        if self.tag != other.tag:
            return self.tag < other.tag
        return self.value < other.value

    def __gt__(self, other):
        if other.__class__ is not SumValue:
            return NotImplemented
        return other < self

    def __le__(self, other):
        if other.__class__ is not SumValue:
            return NotImplemented
        return self == other or self < other

    def __ge__(self, other):
        if other.__class__ is not SumValue:
            return NotImplemented
        return self == other or other < self

    def __repr__(self):
        if self.value is None:
            return f'SumValue({self.tag})'
        return f'SumValue({self.tag}, {self.value!r})'

    def __reduce__(self):
        return (SumValue, (self.tag, self.value))


_set_sv_tag = SumValue.__dict__['tag'].__set__
_set_sv_value = SumValue.__dict__['value'].__set__


def _mk_sumvalue(tag, v):
    o = _new(SumValue)
    _set_sv_tag(o, tag)
    _set_sv_value(o, v)
    return o


# ---------------------------------------------------------------------------
# ScheduleAt
# ---------------------------------------------------------------------------

class ScheduleAt:
    """``Interval(TimeDuration)`` (tag 0, repeating) or ``Time(Timestamp)``
    (tag 1, one-shot).  Build with ``ScheduleAt.interval(...)`` /
    ``ScheduleAt.time(...)``; ``.tag`` is ``'Interval'`` or ``'Time'`` and
    ``.value`` the TimeDuration / Timestamp."""

    __slots__ = ('_si', '_sm')
    __setattr__ = _frozen
    __sats_type__ = SCHEDULE_AT
    __match_args__ = ('tag', 'value')

    def __init__(self, tag, value):
        if tag in (0, 'Interval', 'interval'):
            m = _span_micros(value, 'ScheduleAt interval')
            i = 0
        elif tag in (1, 'Time', 'time'):
            m = value._tsm if value.__class__ is Timestamp else _check_i64(value, 'ScheduleAt time')
            i = 1
        else:
            raise ValueError(f'ScheduleAt tag must be "Interval" or "Time", got {tag!r}')
        object.__setattr__(self, '_si', i)
        object.__setattr__(self, '_sm', m)

    @classmethod
    def interval(cls, duration):
        """Repeat every ``duration``: a TimeDuration, a ``datetime.timedelta``, or an int number of
        MICROseconds (as upstream's TypeScript SDK): ``interval(60)`` repeats every 60 µs; say
        ``TimeDuration.from_seconds(60)`` or ``timedelta(seconds=60)`` for a minute."""
        return cls(0, duration)

    @classmethod
    def time(cls, at):
        """Run once at ``at`` (Timestamp or int microseconds since the epoch)."""
        return cls(1, at)

    @property
    def tag(self):
        return 'Time' if self._si else 'Interval'

    @property
    def _tag_index(self):
        return self._si

    @property
    def value(self):
        return _mk_timestamp(self._sm) if self._si else _mk_time_duration(self._sm)

    def is_interval(self):
        return self._si == 0

    def is_time(self):
        return self._si == 1

    def __eq__(self, other):
        if other.__class__ is ScheduleAt:
            return self._si == other._si and self._sm == other._sm
        return NotImplemented

    def __ne__(self, other):
        if other.__class__ is ScheduleAt:
            return self._si != other._si or self._sm != other._sm
        return NotImplemented

    def __hash__(self):
        return hash(('sched', self._si, self._sm))

    def __lt__(self, other):
        if other.__class__ is ScheduleAt:
            return (self._si, self._sm) < (other._si, other._sm)
        return NotImplemented

    def __le__(self, other):
        if other.__class__ is ScheduleAt:
            return (self._si, self._sm) <= (other._si, other._sm)
        return NotImplemented

    def __gt__(self, other):
        if other.__class__ is ScheduleAt:
            return (self._si, self._sm) > (other._si, other._sm)
        return NotImplemented

    def __ge__(self, other):
        if other.__class__ is ScheduleAt:
            return (self._si, self._sm) >= (other._si, other._sm)
        return NotImplemented

    def __repr__(self):
        if self._si:
            return f'ScheduleAt.time({_mk_timestamp(self._sm)!r})'
        return f'ScheduleAt.interval({_mk_time_duration(self._sm)!r})'

    def __reduce__(self):
        return (ScheduleAt, (self._si, self._sm))


_set_si = ScheduleAt.__dict__['_si'].__set__
_set_sm = ScheduleAt.__dict__['_sm'].__set__


def _mk_schedule_at(i, m):
    if i > 1:
        raise BsatnErrorTag(i)
    o = _new(ScheduleAt)
    _set_si(o, i)
    _set_sm(o, m)
    return o


class BsatnErrorTag(Exception):
    """Internal: bad tag seen on a fast path (replaced by a BsatnError)."""
