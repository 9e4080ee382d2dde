"""The SpacetimeDB 2.x client WebSocket protocol: every v2 message in both directions, and v3 framing
(spec: client-protocol.md sections 1, 4-7).

Each message is declared once as a SATS type (``@product`` / ``@sum`` from ``spacetime_core.sats``), so encoding
and decoding go through the one BSATN codec.  The server (``harness.server.websocket``) and the Python
client both use this module.

    body = encode_client(Subscribe(request_id=0, query_set_id=0, query_strings=["SELECT * FROM person"]))
    msg = decode_client(body)                          # -> Subscribe(...)
    frame = server_frame([InitialConnection(...)], compression="Gzip")   # tag byte + (compressed) body
    msgs = decode_server_frame(frame, v3=False)        # -> [InitialConnection(...)]

Python shapes: client/server messages are the payload products (``Subscribe``, ``ReducerResult``, ...);
``encode_client``/``encode_server`` wrap them in the ``ClientMessage``/``ServerMessage`` sums and the
decoders unwrap them.  ``QuerySetId { id: u32 }`` is a one-field product, byte-identical to a ``u32``, so
query set ids are plain ints here.  Nested sums are ``@sum`` classes (``RowSizeHint.FixedSize(13)``,
``UnsubscribeFlags.SendDroppedRows``, ``ReducerOutcome.Ok(ReducerOk(...))``); ``Option`` fields are
``None`` or the value and ``Result`` fields are ``Ok(v)`` / ``Err(e)``.
"""

import gzip
import struct
import zlib

from spacetime_core.sats import (
    BsatnError,
    ConnectionId,
    Identity,
    Option,
    Result,
    TimeDuration,
    Timestamp,
    decoder,
    encoder,
    product,
    sum_type,
    u8,
    u16,
    u32,
    u64,
)

try:  # optional: without it the server answers Brotli requests uncompressed (tag 0, always legal)
    import brotli as _brotli
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

__all__ = [
    'V1_JSON', 'V1_BSATN', 'V2_BSATN', 'V3_BSATN', 'SUBPROTOCOLS', 'choose_subprotocol',
    'COMPRESSION_NONE', 'COMPRESSION_BROTLI', 'COMPRESSION_GZIP', 'COMPRESSION_MODES', 'COMPRESS_THRESHOLD',
    'ProtocolError',
    'RowSizeHint', 'BsatnRowList', 'SingleTableRows', 'QueryRows', 'PersistentTableRows', 'EventTableRows',
    'TableUpdateRows', 'TableUpdate', 'QuerySetUpdate', 'TransactionUpdate', 'UnsubscribeFlags',
    'ReducerOk', 'ReducerOutcome', 'ProcedureStatus',
    'Subscribe', 'Unsubscribe', 'OneOffQuery', 'CallReducer', 'CallProcedure', 'ClientMessage',
    'InitialConnection', 'SubscribeApplied', 'UnsubscribeApplied', 'SubscriptionError', 'OneOffQueryResult',
    'ReducerResult', 'ProcedureResult', 'ServerMessage',
    'encode_client', 'decode_client', 'decode_client_frame', 'encode_server', 'decode_server',
    'decode_server_messages', 'server_frame', 'decode_server_frame', 'compress_body', 'decompress_frame',
    'row_list', 'reducer_error_bytes', 'decode_reducer_error',
]

# ---------------------------------------------------------------------------------------------------------
# Subprotocols (section 1) and compression (section 4.1)
# ---------------------------------------------------------------------------------------------------------

V1_JSON = 'v1.json.spacetimedb'
V1_BSATN = 'v1.bsatn.spacetimedb'
V2_BSATN = 'v2.bsatn.spacetimedb'
V3_BSATN = 'v3.bsatn.spacetimedb'
#: What this implementation speaks, in the server's order of preference.
SUBPROTOCOLS = (V3_BSATN, V2_BSATN)

COMPRESSION_NONE, COMPRESSION_BROTLI, COMPRESSION_GZIP = 0, 1, 2
#: Values of the ``compression`` query parameter (case-sensitive) -> frame tag.
COMPRESSION_MODES = {'None': COMPRESSION_NONE, 'Brotli': COMPRESSION_BROTLI, 'Gzip': COMPRESSION_GZIP}
#: Bodies up to this many bytes are always sent uncompressed.
COMPRESS_THRESHOLD = 1024


def choose_subprotocol(offered, supported=SUBPROTOCOLS):
    """The first of ``supported`` (server preference order) that the client offered, else None."""
    offered = {p.strip() for p in offered}
    for p in supported:
        if p in offered:
            return p
    return None


class ProtocolError(BsatnError):
    """A frame that is not a valid message of this protocol (bad BSATN, bad flags, empty v3 payload...)."""


# ---------------------------------------------------------------------------------------------------------
# Shared nested types (section 6)
# ---------------------------------------------------------------------------------------------------------

@sum_type
class RowSizeHint:
    FixedSize: u16          # every row has this many bytes
    RowOffsets: list[u64]   # start offset of each row in rows_data


@product
class BsatnRowList:
    size_hint: RowSizeHint
    rows_data: bytes

    def rows(self):
        """Split ``rows_data`` into the encoded rows, following ``size_hint`` (raises ProtocolError if the
        hint does not fit the data)."""
        data = self.rows_data
        hint = self.size_hint
        if hint.tag == 'FixedSize':
            n = hint.value
            if n == 0:
                if data:
                    raise ProtocolError('FixedSize(0) row list with non-empty rows_data')
                return []
            if len(data) % n:
                raise ProtocolError(f'rows_data length {len(data)} is not a multiple of FixedSize({n})')
            return [data[i:i + n] for i in range(0, len(data), n)]
        offs = hint.value
        out = []
        end = len(data)
        prev = 0
        for i, start in enumerate(offs):
            stop = offs[i + 1] if i + 1 < len(offs) else end
            if start < prev or stop < start or stop > end:
                raise ProtocolError(f'bad row offsets {offs!r} for {end} bytes of rows_data')
            out.append(data[start:stop])
            prev = start
        if offs and offs[0] != 0:
            raise ProtocolError(f'row offsets must start at 0, got {offs[0]}')
        if not offs and data:
            raise ProtocolError('RowOffsets([]) with non-empty rows_data')
        return out

    def __len__(self):
        hint = self.size_hint
        if hint.tag == 'FixedSize':
            return len(self.rows_data) // hint.value if hint.value else 0
        return len(hint.value)


def row_list(rows):
    """A BsatnRowList for already-encoded rows, encoded the way the real server does: empty ->
    ``RowOffsets([])``, all rows the same length n -> ``FixedSize(n)``, otherwise ``RowOffsets``."""
    if not rows:
        return BsatnRowList(RowSizeHint.RowOffsets([]), b'')
    n = len(rows[0])
    if 0 < n <= 0xFFFF:
        for r in rows:
            if len(r) != n:
                break
        else:
            return BsatnRowList(RowSizeHint.FixedSize(n), b''.join(rows))
    offs = []
    pos = 0
    for r in rows:
        offs.append(pos)
        pos += len(r)
    return BsatnRowList(RowSizeHint.RowOffsets(offs), b''.join(rows))


@product
class SingleTableRows:
    table: str
    rows: BsatnRowList


@product
class QueryRows:
    tables: list[SingleTableRows]


@product
class PersistentTableRows:
    inserts: BsatnRowList   # inserts first (v1 had deletes first)
    deletes: BsatnRowList


@product
class EventTableRows:
    events: BsatnRowList


@sum_type
class TableUpdateRows:
    PersistentTable: PersistentTableRows
    EventTable: EventTableRows


@product
class TableUpdate:
    table_name: str
    rows: list[TableUpdateRows]


@product
class QuerySetUpdate:
    query_set_id: u32       # QuerySetId { id: u32 }
    tables: list[TableUpdate]


@product
class TransactionUpdate:
    """Also ServerMessage variant 4 (sent to subscribers that did not call the reducer)."""
    query_sets: list[QuerySetUpdate]


@sum_type
class UnsubscribeFlags:
    Default: None
    SendDroppedRows: None


@product
class ReducerOk:
    ret_value: bytes
    transaction_update: TransactionUpdate


@sum_type
class ReducerOutcome:
    Ok: ReducerOk
    OkEmpty: None
    Err: bytes              # BSATN of the error string (see reducer_error_bytes)
    InternalError: str


@sum_type
class ProcedureStatus:
    Returned: bytes         # BSATN of the return value
    InternalError: str


# ---------------------------------------------------------------------------------------------------------
# ClientMessage (section 5)
# ---------------------------------------------------------------------------------------------------------

@product
class Subscribe:
    request_id: u32
    query_set_id: u32
    query_strings: list[str]


@product
class Unsubscribe:
    request_id: u32
    query_set_id: u32
    flags: UnsubscribeFlags = UnsubscribeFlags.SendDroppedRows


@product
class OneOffQuery:
    request_id: u32
    query_string: str


@product
class CallReducer:
    request_id: u32
    flags: u8               # must be 0
    reducer: str
    args: bytes


@product
class CallProcedure:
    request_id: u32
    flags: u8               # must be 0
    procedure: str
    args: bytes


@sum_type
class ClientMessage:
    Subscribe: Subscribe
    Unsubscribe: Unsubscribe
    OneOffQuery: OneOffQuery
    CallReducer: CallReducer
    CallProcedure: CallProcedure


# ---------------------------------------------------------------------------------------------------------
# ServerMessage (section 6)
# ---------------------------------------------------------------------------------------------------------

@product
class InitialConnection:
    identity: Identity
    connection_id: ConnectionId
    token: str


@product
class SubscribeApplied:
    request_id: u32
    query_set_id: u32
    rows: QueryRows


@product
class UnsubscribeApplied:
    request_id: u32
    query_set_id: u32
    rows: Option[QueryRows]


@product
class SubscriptionError:
    request_id: Option[u32]     # None: a later failure while evaluating an update
    query_set_id: u32
    error: str


@product
class OneOffQueryResult:
    request_id: u32
    result: Result[QueryRows, str]


@product
class ReducerResult:
    request_id: u32
    timestamp: Timestamp
    result: ReducerOutcome


@product
class ProcedureResult:
    status: ProcedureStatus
    timestamp: Timestamp
    total_host_execution_duration: TimeDuration
    request_id: u32             # last, unlike every other message


@sum_type
class ServerMessage:
    InitialConnection: InitialConnection
    SubscribeApplied: SubscribeApplied
    UnsubscribeApplied: UnsubscribeApplied
    SubscriptionError: SubscriptionError
    TransactionUpdate: TransactionUpdate
    OneOffQueryResult: OneOffQueryResult
    ReducerResult: ReducerResult
    ProcedureResult: ProcedureResult


# ---------------------------------------------------------------------------------------------------------
# Encoding and decoding
# ---------------------------------------------------------------------------------------------------------

_CLIENT_T = ClientMessage.__sats_type__
_SERVER_T = ServerMessage.__sats_type__
_enc_client = encoder(_CLIENT_T)
_dec_client = decoder(_CLIENT_T)
_enc_server = encoder(_SERVER_T)
_dec_server = decoder(_SERVER_T)
_CLIENT_WRAP = {Subscribe: ClientMessage.Subscribe, Unsubscribe: ClientMessage.Unsubscribe,
                OneOffQuery: ClientMessage.OneOffQuery, CallReducer: ClientMessage.CallReducer,
                CallProcedure: ClientMessage.CallProcedure}
_SERVER_WRAP = {c: getattr(ServerMessage, c.__name__) for c in (
    InitialConnection, SubscribeApplied, UnsubscribeApplied, SubscriptionError, TransactionUpdate,
    OneOffQueryResult, ReducerResult, ProcedureResult)}
_N_CLIENT = len(_CLIENT_WRAP)
_N_SERVER = len(_SERVER_WRAP)


def _wrap(table, msg, what):
    try:
        return table[msg.__class__](msg)
    except KeyError:
        raise TypeError(f'not a {what}: {msg!r}') from None


def encode_client(msg):
    """BSATN of one ClientMessage (``msg`` is a Subscribe/Unsubscribe/OneOffQuery/CallReducer/CallProcedure)."""
    return _enc_client(_wrap(_CLIENT_WRAP, msg, 'ClientMessage'))


def encode_server(msg):
    """BSATN of one ServerMessage (``msg`` is one of the ServerMessage payload classes)."""
    return _enc_server(_wrap(_SERVER_WRAP, msg, 'ServerMessage'))


def _decode_one(dec, n, what, buf, off):
    if off >= len(buf):
        raise ProtocolError(f'empty {what}')
    tag = buf[off]
    if tag >= n:
        raise ProtocolError(f'unknown {what} tag {tag} at byte {off}')
    try:
        v, end = dec(buf, off)
    except ProtocolError:
        raise
    except BsatnError as e:
        raise ProtocolError(f'invalid {what}: {e}') from None
    except Exception as e:  # noqa: BLE001 - any decoder failure is a malformed frame
        raise ProtocolError(f'invalid {what}: {type(e).__name__}: {e}') from None
    return v.value, end


def _check_client(msg):
    if msg.__class__ in (CallReducer, CallProcedure) and msg.flags != 0:
        raise ProtocolError(f'invalid {type(msg).__name__} flags {msg.flags}: must be 0')
    return msg


def decode_client(data):
    """Exactly one ClientMessage (v2 frame); raises ProtocolError on bad or trailing bytes."""
    msg, end = _decode_one(_dec_client, _N_CLIENT, 'ClientMessage', data, 0)
    if end != len(data):
        raise ProtocolError(f'trailing bytes: ClientMessage used {end} of {len(data)} bytes')
    return _check_client(msg)


def decode_client_frame(data, v3=False):
    """The ClientMessages of one binary WebSocket message: exactly one on v2, one or more concatenated on
    v3 (an empty v3 payload is an error)."""
    if not v3:
        return [decode_client(data)]
    if not data:
        raise ProtocolError('empty v3 payload')
    out = []
    off = 0
    n = len(data)
    while off < n:
        msg, off = _decode_one(_dec_client, _N_CLIENT, 'ClientMessage', data, off)
        out.append(_check_client(msg))
    return out


def decode_server(data):
    """Exactly one ServerMessage body (no compression tag)."""
    msg, end = _decode_one(_dec_server, _N_SERVER, 'ServerMessage', data, 0)
    if end != len(data):
        raise ProtocolError(f'trailing bytes: ServerMessage used {end} of {len(data)} bytes')
    return msg


def decode_server_messages(body, v3=False):
    """The ServerMessages in one decompressed body: one on v2, one or more concatenated on v3."""
    if not v3:
        return [decode_server(body)]
    out = []
    off = 0
    while off < len(body):
        msg, off = _decode_one(_dec_server, _N_SERVER, 'ServerMessage', body, off)
        out.append(msg)
    if not out:
        raise ProtocolError('empty v3 payload')
    return out


# ---------------------------------------------------------------------------------------------------------
# Server -> client framing: [compression tag][body]
# ---------------------------------------------------------------------------------------------------------

_TAG0 = b'\x00'


def compress_body(body, compression='None'):
    """One server->client WebSocket message for ``body``: tag byte then the body, compressed with the
    client's choice (``'None'``/``'Gzip'``/``'Brotli'``) when it is larger than 1024 bytes.  Brotli falls back
    to tag 0 when the ``brotli`` package is absent (clients must accept tag 0 at any time)."""
    if compression == 'None' or len(body) <= COMPRESS_THRESHOLD:
        return _TAG0 + body
    if compression == 'Gzip':
        return b'\x02' + gzip.compress(body, compresslevel=1, mtime=0)
    if compression == 'Brotli' and _brotli is not None:
        return b'\x01' + _brotli.compress(body, quality=1)
    return _TAG0 + body


def server_frame(msgs, compression='None'):
    """Encode ServerMessages into one WebSocket message (several only make sense on v3)."""
    if len(msgs) == 1:
        body = encode_server(msgs[0])
    else:
        body = b''.join(encode_server(m) for m in msgs)
    return compress_body(body, compression)


def decompress_frame(frame, max_size=1 << 30):
    """Strip the tag byte of a server->client message and decompress the body."""
    if not frame:
        raise ProtocolError('empty server message')
    tag = frame[0]
    body = bytes(frame[1:])
    if tag == COMPRESSION_NONE:
        return body
    if tag == COMPRESSION_GZIP:
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = d.decompress(body, max_size)
            if d.unconsumed_tail:
                raise ProtocolError('gzip body too large')
            return out
        except zlib.error as e:
            raise ProtocolError(f'bad gzip body: {e}') from None
    if tag == COMPRESSION_BROTLI:
        if _brotli is None:
            raise ProtocolError('brotli-compressed message but the brotli package is not installed')
        try:
            return _brotli.decompress(body)
        except Exception as e:  # noqa: BLE001 - brotli.error
            raise ProtocolError(f'bad brotli body: {e}') from None
    raise ProtocolError(f'unknown compression tag {tag}')


def decode_server_frame(frame, v3=False):
    """All ServerMessages in one server->client WebSocket message."""
    return decode_server_messages(decompress_frame(frame), v3)


# ---------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------

_LEN = struct.Struct('<I')


def reducer_error_bytes(message):
    """The ``ReducerOutcome.Err`` payload: the BSATN of the error string."""
    b = message.encode('utf-8')
    return _LEN.pack(len(b)) + b


def decode_reducer_error(payload):
    """Inverse of ``reducer_error_bytes`` (lenient: undecodable payloads are shown as text)."""
    if len(payload) >= 4:
        (n,) = _LEN.unpack_from(payload)
        if n == len(payload) - 4:
            return bytes(payload[4:]).decode('utf-8', 'replace')
    return bytes(payload).decode('utf-8', 'replace')
