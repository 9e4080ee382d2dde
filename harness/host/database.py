"""One database: a module, its datastore, its commit log and its logs.  The Python API that tests, the
CLI and the server all use to run a SpacetimeDB module in-process.

    db = Database.create(wasm_bytes, owner=Identity.from_hex(...))          # first publish: tables + init
    out = db.call_reducer("add", ["Alice", 30], sender=some_identity)       # one transaction
    out.committed, out.error, db.rows("person"), db.logs()

Each reducer call is one transaction: return 0 commits (then the commit log makes it durable before the
call returns), anything else rolls back.  A trap (timeout, memory, stack, host fault) rolls back and the
instance is replaced from the cached compiled module before the next call.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from harness.commitlog import CommitLog, TxRecord
from harness.datastore import Datastore, IndexAlgo, IndexSchema, SequenceSchema, TableSchema, TxData
from module_sdk.sats import (
    ConnectionId,
    Identity,
    ProductType,
    Timestamp,
    decoder,
    encode,
    encoder,
    sort_key,
)

from .abi import AbiEnv, IndexRuntime, LogRecord, TableRuntime, row_codec
from .module_def import ModuleDef, ModuleDefError, decode_module_def
from .scheduler import ScheduledTable, Scheduler
from .wasm import Instance, Limits, LinkError, Trap, compile_module

ERR_HOST_CALL_FAILURE = 1
ZERO_CONN = bytes(16)
_SEQ = struct.Struct("<IHq")  # (table_id, column, next value) in a commit record's meta (low 64 bits)


class ModuleLoadError(RuntimeError):
    """The wasm could not be loaded as a SpacetimeDB module; the message says why."""


class ReducerNotFound(LookupError):
    pass


@dataclass
class ReducerOutcome:
    """What a caller learns about one reducer call."""

    reducer: str
    status: str  # "committed" | "failed" (user error) | "trapped" (instance fault, rolled back)
    error: str | None = None
    txdata: TxData | None = None
    tx_offset: int | None = None
    duration_us: float = 0.0
    timestamp: Timestamp | None = None
    trap_kind: str | None = None

    @property
    def committed(self) -> bool:
        return self.status == "committed"


@dataclass
class DatabaseInfo:
    identity: str
    owner: str
    module_hash: str
    created_us: int
    extra: dict = field(default_factory=dict)


DEFAULT_LIMITS = Limits()


class Database:
    def __init__(self, wasm: bytes, *, identity: Identity, owner: Identity, data_dir: str | Path | None = None,
                 limits: Limits = DEFAULT_LIMITS, durability: str = "every",
                 on_log: Callable[[LogRecord], None] | None = None):
        self.identity = identity
        self.owner = owner
        self.limits = limits
        self.wasm = bytes(wasm)
        self.data_dir = Path(data_dir) if data_dir else None
        self._log_records: list[LogRecord] = []
        self._log_listeners: list[Callable[[LogRecord], None]] = [on_log] if on_log else []
        self._lock = threading.RLock()  # one reducer at a time per database
        try:
            self.module = compile_module(self.wasm)
        except Exception as e:  # wasmtime refuses the bytes
            raise ModuleLoadError(f"not a valid wasm module: {str(e).splitlines()[0]}") from None
        self.instances_created = 0
        self.inst: Instance | None = None
        self.env: AbiEnv | None = None
        self.datastore = Datastore()
        self._tables_rt: dict[int, TableRuntime] = {}
        self._indexes_rt: dict[int, IndexRuntime] = {}
        self._table_names: dict[str, int] = {}
        self._index_names: dict[str, int] = {}
        self._new_instance()  # also describes the module
        self.scheduler = Scheduler(self)
        self.commitlog = CommitLog(self.data_dir / "commitlog", durability=durability) if self.data_dir else None

    # ------------------------------------------------------------------ creation / recovery

    @classmethod
    def create(cls, wasm: bytes, *, owner: Identity, identity: Identity | None = None,
               data_dir: str | Path | None = None, **kw) -> Database:
        """First publish: create the tables and run the `init` reducer (if any) as the owner."""
        identity = identity or Identity.from_bytes(os.urandom(32))
        if data_dir:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            (Path(data_dir) / "module.wasm").write_bytes(wasm)
        db = cls(wasm, identity=identity, owner=owner, data_dir=data_dir, **kw)
        db._create_tables()
        if db.data_dir:
            info = DatabaseInfo(identity.to_hex(), owner.to_hex(), _hash(wasm), int(time.time() * 1e6))
            (db.data_dir / "database.json").write_bytes(msgspec.json.encode(info))
        init = db.mdef.lifecycle("init")
        if init is not None:
            out = db._call(init.id, b"", owner.to_bytes(), ZERO_CONN, None)
            if not out.committed:
                raise ModuleLoadError(f"init reducer failed: {out.error}")
        return db

    @classmethod
    def open(cls, data_dir: str | Path, **kw) -> Database:
        """Reopen a database from its data directory: latest snapshot + commit log replay."""
        data_dir = Path(data_dir)
        info = msgspec.json.decode((data_dir / "database.json").read_bytes(), type=DatabaseInfo)
        db = cls((data_dir / "module.wasm").read_bytes(), identity=Identity.from_hex(info.identity),
                 owner=Identity.from_hex(info.owner), data_dir=data_dir, **kw)
        db._create_tables()
        assert db.commitlog is not None
        for _offset, payload in db.commitlog.replay():
            rec = TxRecord.decode(payload)
            plain = {
                "tables": [[tid, rec.inserts.get(tid, []), rec.deletes.get(tid, [])]
                           for tid in {*rec.inserts, *rec.deletes}],
                "sequences": [list(_SEQ.unpack_from(rec.meta, i)) for i in range(0, len(rec.meta), _SEQ.size)],
            }
            db.datastore.apply(db.datastore.txdata_from_plain(plain))
        db.scheduler.rebuild()
        return db

    # ------------------------------------------------------------------ instances

    def _new_instance(self) -> None:
        """Instantiate (cheap: the compiled module is cached) and run the init sequence of module-abi.md §6."""
        env = AbiEnv(tables=self._tables_rt, indexes=self._indexes_rt, table_names=self._table_names,
                     index_names=self._index_names, database_identity=self.identity.to_bytes(), on_log=self._emit_log)
        try:
            inst = Instance(self.module, env.imports(), self.limits)
        except LinkError as e:
            raise ModuleLoadError(f"{e}: SpacetimeDB modules may import only spacetime_10.0..10.5 functions") from None
        env.inst = inst
        env.mv = inst.refresh_memory()
        names = [e.name for e in self.module.exports]
        for required in ("__describe_module__", "__call_reducer__"):
            if required not in names:
                raise ModuleLoadError(f"the module does not export {required}")
        if inst.memory is None:
            raise ModuleLoadError("the module does not export its memory as `memory`")
        env.begin_call(None, None)
        try:
            if "_initialize" in names:
                inst.export("_initialize")()
            for name in sorted(n for n in names if n.startswith("__preinit__")):
                inst.export(name)()
            if "__setup__" in names:
                sink = env.new_sink()
                if inst.export("__setup__")(sink):
                    raise ModuleLoadError(f"__setup__ failed: {env.sinks[sink].decode('utf-8', 'replace')}")
            sink = env.new_sink()
            inst.export("__describe_module__")(sink)
            raw = bytes(env.sinks[sink])
        except Trap as e:
            raise ModuleLoadError(f"the module trapped while starting: {e}") from None
        finally:
            env.end_call()
        if self.instances_created == 0:
            try:
                self.mdef: ModuleDef = decode_module_def(raw)
            except ModuleDefError as e:
                raise ModuleLoadError(f"invalid module definition: {e}") from None
        self.instances_created += 1
        self.inst, self.env = inst, env
        self._call_reducer_export = inst.export("__call_reducer__")

    def _create_tables(self) -> None:
        """Tables are created in lexicographic order of canonical names (ids as upstream assigns them)."""
        ts = self.mdef.typespace
        for t in sorted(self.mdef.tables, key=lambda t: t.name):
            decode, encode_row = row_codec(t.row_type, ts)
            col_types = [ty for _, ty in t.row_type.elements]
            unique_sets = {tuple(u) for u in t.unique}
            indexes = []
            for ix in t.indexes:
                fns = tuple(_key_fn(col_types[c], ts) for c in ix.columns)
                aliases = tuple({ix.source_name} - {ix.name}) if ix.source_name else ()
                indexes.append(IndexSchema(ix.name, ix.columns, IndexAlgo[ix.algo.upper()],
                                           unique=tuple(ix.columns) in unique_sets, aliases=aliases, key_fns=fns))
            seqs = tuple(SequenceSchema(s.column, s.start, s.min_value,
                                        _cap(s.max_value, col_types[s.column]), s.increment) for s in t.sequences)
            aliases = (t.source_name,) if t.source_name != t.name else ()
            sched = None
            if t.schedule:
                tid_hint = len(self._tables_rt)  # replaced by the real id below
                sched = ScheduledTable(tid_hint, t.name, t.schedule.at_column, self.mdef.reducer(t.schedule.reducer).id)
            tid = self.datastore.create_table(TableSchema(
                t.name, t.column_names, decode, encode_row, tuple(indexes), tuple(t.unique), seqs,
                t.primary_key, t.is_event, aliases, row_check=self.scheduler.row_check(sched) if sched else None))
            if sched:
                self.scheduler.register(ScheduledTable(tid, sched.name, sched.at_column, sched.reducer_id))
            self._table_names[t.name] = tid
            self._table_names[t.source_name] = tid
            self._tables_rt[tid] = TableRuntime(tid, decoder(t.row_type, ts),
                                                tuple(encoder(ty, ts) for ty in col_types))
            for ix in t.indexes:
                iid = self.datastore.index_id(ix.name)
                self._index_names[ix.name] = iid
                if ix.source_name:
                    self._index_names[ix.source_name] = iid
                self._indexes_rt[iid] = IndexRuntime(iid, ix.columns,
                                                     tuple(decoder(col_types[c], ts) for c in ix.columns))

    # ------------------------------------------------------------------ calls

    def call_reducer(self, reducer: str | int, args: bytes | Sequence | dict = b"", *,
                     sender: Identity | None = None, connection_id: ConnectionId | None = None,
                     timestamp: Timestamp | None = None) -> ReducerOutcome:
        """Call a reducer by name (canonical or source) or id.  `args` is the BSATN of the params product, or
        a list/dict of values to encode with the reducer's parameter types."""
        rdef = self._reducer(reducer)
        if not isinstance(args, (bytes, bytearray, memoryview)):
            args = self.encode_args(rdef.params, args)
        sender_b = (sender or self.owner).to_bytes()
        conn_b = connection_id.to_bytes() if connection_id else ZERO_CONN
        return self._call(rdef.id, bytes(args), sender_b, conn_b, timestamp)

    def client_connected(self, sender: Identity, connection_id: ConnectionId) -> ReducerOutcome:
        """Run the client_connected reducer; a failure means the connection must be refused."""
        return self._lifecycle("client_connected", sender, connection_id)

    def client_disconnected(self, sender: Identity, connection_id: ConnectionId) -> ReducerOutcome:
        return self._lifecycle("client_disconnected", sender, connection_id)

    def _lifecycle(self, event: str, sender: Identity, connection_id: ConnectionId) -> ReducerOutcome:
        rdef = self.mdef.lifecycle(event)
        if rdef is None:
            return ReducerOutcome(event, "committed")
        return self._call(rdef.id, b"", sender.to_bytes(), connection_id.to_bytes(), None)

    def encode_args(self, params: ProductType, args: Sequence | dict) -> bytes:
        if isinstance(args, dict):
            args = [args[name] for name, _ in params.elements]
        return encode(params, tuple(args), self.mdef.typespace)

    def _reducer(self, reducer: str | int):
        try:
            return self.mdef.reducers[reducer] if isinstance(reducer, int) else self.mdef.reducer(reducer)
        except (KeyError, IndexError):
            raise ReducerNotFound(f"no such reducer: {reducer!r}") from None

    def _call(self, rid: int, args: bytes, sender: bytes, conn: bytes, timestamp: Timestamp | None,
              before_commit: Callable | None = None) -> ReducerOutcome:
        rdef = self.mdef.reducers[rid]
        with self._lock:
            ts = timestamp or Timestamp(int(time.time() * 1e6))
            if self.inst is None:
                self._new_instance()
            env = self.env
            tx = self.datastore.begin()
            env.begin_call(rdef.name, tx)
            err_sink = env.new_sink()
            src = env.new_source(args)
            s = struct.unpack("<4Q", sender)
            c = struct.unpack("<2Q", conn)
            t0 = time.perf_counter()
            try:
                rc = self._call_reducer_export(rid, *s, *c, ts.micros, src, err_sink)
            except Trap as e:
                tx.rollback()
                env.end_call()
                self.inst = None  # replaced lazily: the next call gets a fresh instance
                self._emit_log(LogRecord(0, None, None, None, f"reducer {rdef.name} trapped ({e.kind}): {e}",
                                         int(time.time() * 1e6), rdef.name))
                return ReducerOutcome(rdef.name, "trapped", _trap_message(e), duration_us=_us(t0), timestamp=ts,
                                      trap_kind=e.kind)
            message = bytes(env.sinks.get(err_sink, b"")).decode("utf-8", "replace")
            env.end_call()
            if rc != 0:
                tx.rollback()
                if rc != ERR_HOST_CALL_FAILURE:
                    message = message or f"reducer returned unknown code {rc}"
                return ReducerOutcome(rdef.name, "failed", message, duration_us=_us(t0), timestamp=ts)
            if before_commit is not None:
                before_commit(tx)
            txdata = tx.commit()
            offset = self._persist(rdef.name, ts, txdata)
            self.scheduler.on_commit(txdata, ts.micros)
            return ReducerOutcome(rdef.name, "committed", None, txdata, offset, _us(t0), ts)

    def _persist(self, reducer: str, ts: Timestamp, txdata: TxData) -> int | None:
        """Append the transaction to the commit log; under 'every' it is fsynced before we return."""
        if self.commitlog is None or txdata.is_empty():
            return None
        meta = b"".join(_SEQ.pack(tid, col, v & 0x7FFFFFFFFFFFFFFF) for (tid, col), v in txdata.sequences.items())
        rec = TxRecord(self.commitlog.next_offset, ts.micros, reducer,
                       {tid: list(d.inserts) for tid, d in txdata.tables.items() if d.inserts},
                       {tid: list(d.deletes) for tid, d in txdata.tables.items() if d.deletes}, meta)
        return self.commitlog.append(rec.encode())

    # ------------------------------------------------------------------ reading

    def table_id(self, name: str) -> int:
        return self._table_names[name]

    def rows(self, table: str) -> list[tuple]:
        """Committed rows of a table as tuples of values."""
        with self.datastore.read() as r:
            return r.scan(self.table_id(table))

    def row_dicts(self, table: str) -> list[dict]:
        cols = self.mdef.table(table).column_names
        return [dict(zip(cols, row)) for row in self.rows(table)]

    def start_scheduler(self) -> None:
        """Fire scheduled reducers from a background thread (the server does this; tests may call
        `scheduler.run_due(now)` instead)."""
        self.scheduler.start()

    def _host_log(self, message: str) -> None:
        self._emit_log(LogRecord(0, "host", None, None, message, int(time.time() * 1e6)))

    def logs(self) -> list[LogRecord]:
        return list(self._log_records)

    def subscribe_logs(self, fn: Callable[[LogRecord], None]) -> None:
        self._log_listeners.append(fn)

    def _emit_log(self, rec: LogRecord) -> None:
        self._log_records.append(rec)
        for fn in self._log_listeners:
            fn(rec)

    def close(self) -> None:
        self.scheduler.stop()
        if self.commitlog is not None:
            self.commitlog.close()
            self.commitlog = None


def _key_fn(ty, ts):
    fn = sort_key(ty, ts)
    return None if getattr(fn, "__name__", "") in ("identity_key",) else fn


def _cap(max_value: int | None, ty) -> int | None:
    from module_sdk.sats.types import INT_RANGES

    rng = INT_RANGES.get(getattr(ty, "tag", None))
    if rng is None:
        return max_value
    hi = rng[1]
    return hi if max_value is None else min(max_value, hi)


def _trap_message(e: Trap) -> str:
    if e.kind == "timeout":
        return "The reducer exceeded its time limit and was stopped."
    if e.kind == "out_of_fuel":
        return "The reducer ran out of energy."
    return f"The instance encountered a fatal error: {e}"


def _us(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e6


def _hash(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
