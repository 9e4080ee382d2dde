"""The `ctx` objects passed to reducers, views and procedures.

ReducerContext (also `TxContext` inside `ProcedureContext.with_tx`):
    ctx.sender           Identity of the caller (the database identity for scheduled calls)
    ctx.connection_id    ConnectionId of the caller, or None (init, scheduled and internal calls)
    ctx.timestamp        Timestamp of the call (use it instead of the clock: reducers must be deterministic)
    ctx.db               the tables, `ctx.db.<accessor>`
    ctx.identity         the database's own Identity (alias: database_identity)
    ctx.rng              deterministic random generator seeded from the timestamp (`ctx.random()` = float)
    ctx.new_uuid_v4(), ctx.new_uuid_v7()
    ctx.sender_auth      .jwt (JwtClaims: .subject .issuer .audience .raw_payload, or None), .has_jwt, .is_internal
ViewContext: sender, db (read-only), from_ (query builder).  AnonymousViewContext: db (read-only), from_.
ProcedureContext: sender, connection_id, timestamp, identity, rng, new_uuid_*, http, with_tx(fn),
    try_with_tx(fn), sleep_until(timestamp).
HandlerContext (HTTP handlers): timestamp, identity, rng, new_uuid_*, http, with_tx(fn), try_with_tx(fn).
"""

import sys

from spacetime_core.sats.values import Err, Identity, Timestamp, Uuid, _mk_identity, _mk_timestamp

from . import _abi
from .http import HttpClient
from .jwt import JwtClaims
from .rng import Rng

_database_identity = None


def database_identity():
    """The database's Identity (asked from the host once per instance)."""
    global _database_identity
    i = _database_identity
    if i is None:
        i = _database_identity = _mk_identity(_abi.identity())
    return i


class AuthContext:
    """Who is calling, as far as credentials go."""

    __slots__ = ('_conn', '_jwt', '_loaded')

    def __init__(self, connection_id):
        self._conn = connection_id
        self._jwt = None
        self._loaded = False

    @property
    def is_internal(self):
        """True when no client connection made the call (init, scheduled and internal calls)."""
        return self._conn is None

    @property
    def jwt(self):
        """The claims of the token the caller connected with (`JwtClaims`), or None (internal calls, or a
        connection the host has no token for)."""
        if not self._loaded:
            self._loaded = True
            if self._conn is not None:
                raw = _abi.get_jwt(self._conn.to_bytes())
                if raw is not None:
                    self._jwt = JwtClaims(raw.decode('utf-8', 'replace') if isinstance(raw, (bytes, bytearray))
                                          else raw)
        return self._jwt

    @property
    def has_jwt(self):
        return self.jwt is not None

    def __repr__(self):
        return f'<AuthContext internal={self.is_internal}>'


class _CallInfo:
    """What reducers, transactions and procedures share."""

    __slots__ = ()

    @property
    def identity(self):
        """The database's own Identity."""
        return database_identity()

    database_identity = identity

    @property
    def rng(self):
        """Deterministic random numbers for this call, seeded from `timestamp`."""
        r = self._rng
        if r is None:
            r = self._rng = Rng(self.timestamp.micros)
        return r

    def random(self):
        """A float in [0, 1) from `rng`."""
        return self.rng.random()

    def new_uuid_v4(self):
        """A random (version 4) Uuid drawn from `rng`."""
        return Uuid.from_random_bytes(self.rng.randbytes(16))

    def new_uuid_v7(self):
        """A time-ordered (version 7) Uuid: the call's timestamp, a per-call counter, random bits.
        UUIDs made in one call increase."""
        c = self._uuid_counter
        self._uuid_counter = c + 1
        return Uuid.v7(self.timestamp, c, self.rng.randbytes(4))

    @property
    def sender_auth(self):
        return AuthContext(self.connection_id)


class ReducerContext(_CallInfo):
    """The context of a reducer call (see module docstring)."""

    __slots__ = ('sender', 'connection_id', 'timestamp', 'db', '_rng', '_uuid_counter')

    def __init__(self, sender, connection_id, timestamp, db):
        # _dispatch.call_reducer sets the same slots without calling this (keep the two in step)
        self.sender = sender
        self.connection_id = connection_id
        self.timestamp = timestamp
        self.db = db
        self._rng = None
        self._uuid_counter = 0

    def __repr__(self):
        return f'<{type(self).__name__} sender={self.sender} timestamp={self.timestamp}>'


class TxContext(ReducerContext):
    """The context inside `ProcedureContext.with_tx`: like a reducer's, at the transaction's timestamp."""

    __slots__ = ()


class ViewContext:
    """A view computed per caller: `sender` and a read-only `db`."""

    __slots__ = ('sender', 'db')

    def __init__(self, sender, db):
        self.sender = sender
        self.db = db

    @property
    def from_(self):
        """Query builder for `-> Query[Row]` views: `ctx.from_.<table>.where(...)` (module_sdk/query.py)."""
        q = sys.modules.get(__package__ + '.query')  # loaded (and bundled) by `from module_sdk import Query`
        if q is None:
            raise AttributeError('ctx.from_ builds the result of a -> Query[Row] view: import Query from module_sdk')
        return q.current_from()

    def __repr__(self):
        return f'<ViewContext sender={self.sender}>'


class AnonymousViewContext:
    """A view that is the same for every caller: a read-only `db` only."""

    __slots__ = ('db',)

    def __init__(self, db):
        self.db = db

    @property
    def from_(self):
        """Query builder for `-> Query[Row]` views: `ctx.from_.<table>.where(...)` (module_sdk/query.py)."""
        q = sys.modules.get(__package__ + '.query')  # loaded (and bundled) by `from module_sdk import Query`
        if q is None:
            raise AttributeError('ctx.from_ builds the result of a -> Query[Row] view: import Query from module_sdk')
        return q.current_from()

    def __repr__(self):
        return '<AnonymousViewContext>'


class ProcedureContext(_CallInfo):
    """The context of a procedure call.  No transaction is open: use `with_tx` for database access.
    `http` makes outbound HTTP requests (outside transactions only)."""

    __slots__ = ('sender', 'connection_id', 'timestamp', '_db', '_rng', '_uuid_counter', 'http')

    def __init__(self, sender, connection_id, timestamp, db):
        self.sender = sender
        self.connection_id = connection_id
        self.timestamp = timestamp
        self._db = db
        self._rng = None
        self._uuid_counter = 0
        self.http = HttpClient()

    @property
    def db(self):
        """Not here: a procedure has no open transaction (say so instead of a bare AttributeError)."""
        raise AttributeError(f'{type(self).__name__} has no db: no transaction is open in a procedure; read and '
                             'write in one with ctx.with_tx(lambda tx: tx.db.<table>...)')

    def with_tx(self, fn):
        """Run `fn(tx)` in a new mutable transaction (`tx` is a TxContext with `tx.db`); commit when it
        returns, roll back if it raises.  Returns what `fn` returned."""
        tx = TxContext(self.sender, self.connection_id, _mk_timestamp(_abi.start_mut_tx()), self._db)
        try:
            result = fn(tx)
        except BaseException:
            _abi.abort_mut_tx()
            raise
        _abi.commit_mut_tx()
        return result

    def try_with_tx(self, fn):
        """Like `with_tx`, but also rolls back (without raising) when `fn` returns an `Err(...)`."""
        tx = TxContext(self.sender, self.connection_id, _mk_timestamp(_abi.start_mut_tx()), self._db)
        try:
            result = fn(tx)
        except BaseException:
            _abi.abort_mut_tx()
            raise
        if isinstance(result, Err):
            _abi.abort_mut_tx()
        else:
            _abi.commit_mut_tx()
        return result

    def sleep_until(self, when):
        """Suspend the procedure until `when` (a Timestamp or µs since the epoch); updates `timestamp`."""
        micros = when.micros if isinstance(when, Timestamp) else int(when)
        self.timestamp = _mk_timestamp(_abi.sleep_until(micros))
        return self.timestamp

    def __repr__(self):
        return f'<ProcedureContext sender={self.sender} timestamp={self.timestamp}>'


class HandlerContext(ProcedureContext):
    """The context of an HTTP handler call: like a procedure's, without a caller (HTTP requests are not
    authenticated; transactions run with the zero identity as sender, as upstream)."""

    __slots__ = ()

    def __init__(self, timestamp, db):
        super().__init__(_mk_identity(bytes(32)), None, timestamp, db)

    def __repr__(self):
        return f'<HandlerContext timestamp={self.timestamp}>'


__all__ = ['AnonymousViewContext', 'AuthContext', 'HandlerContext', 'Identity', 'ProcedureContext', 'ReducerContext',
           'TxContext', 'ViewContext', 'database_identity']
