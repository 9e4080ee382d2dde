"""One database: a module, its datastore, its commit log and its logs.  The Python API that tests, the
CLI and the server all use to run a SpacetimeDB module in-process.

    db = Database.create(wasm_bytes, owner=Identity.from_hex(...))          # first publish: tables + init
    out = db.call_reducer("add", ["Alice", 30], sender=some_identity)       # one transaction
    out.committed, out.error, db.rows("person"), db.logs()
    db.call_procedure("fetch", ["x"]).value, db.call_view("my_player", sender=alice).rows
    db.update_module(new_wasm)                                              # republish (auto-migration)

Each reducer call is one transaction: return 0 commits (then the commit log makes it durable before the
call returns; with durability="group" it is written before the call returns and fsynced by the durability
thread: `wait_durable(out.tx_offset)`), anything else rolls back.  A trap (timeout, memory, stack, host fault)
rolls back and the instance is replaced from the cached compiled module before the next call.  Procedures run
on their own instance and open transactions themselves (procedure_start_mut_tx); views run read-only.

Data directory: `database.json` (identity, owner, current module hash), `module.wasm` and
`modules/<sha256>.wasm` (the current module), `commitlog/`, `snapshots/`, `module_logs.jsonl`.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import wasmtime

from harness.commitlog import CommitLog, TxRecord
from harness.commitlog.record import pack_tx
from harness.datastore import Datastore, IndexAlgo, IndexSchema, SequenceSchema, TableSchema, Tx, TxData
from harness.limits import LIMITS
from spacetime_core.module_def import ModuleDef, ModuleDefError, decode_module_def
from spacetime_core.sats import (
    ArrayType,
    ConnectionId,
    Identity,
    ProductType,
    Timestamp,
    decoder,
    encode,
    encoder,
    identity_key,
    resolve,
    sort_key,
)
from spacetime_core.sats.values import _mk_timestamp

from . import http_in, http_out
from .abi import AbiEnv, IndexRuntime, LogRecord, ProcedureHost, TableRuntime, row_codec
from .durability import GroupCommitter
from .logs import LogStore
from .migrate import MigrationError, plan
from .scheduler import ScheduledTable, Scheduler
from .wasm import HostTrap, Instance, Limits, LinkError, Trap, compile_module, trap_text

ERR_HOST_CALL_FAILURE = 1
ZERO_CONN = bytes(16)
_SENDER, _CONN = struct.Struct("<4Q"), struct.Struct("<2Q")  # __call_reducer__'s sender/connection id words
_CALL_REDUCER_PARAMS = "IQQQQQQqII"  # id, sender, connection id, timestamp, args source, error sink: all in range
_SEQ = struct.Struct("<IHq")  # (table_id, column, next value) in a commit record's meta (low 64 bits)
UPDATE_MARKER = "__update_module__"  # reducer name of the (empty) commit record a module update writes
SNAPSHOT_FORMAT = 1
MAX_IMMEDIATE_CHAIN = 1000  # schedule_immediate calls run after one call, at most (the rest wait)


#: target/filename/function of the lines the host itself writes to a module log (upstream's name)
SYSTEM_LOG_NAME = "__spacetimedb__"

class ModuleLoadError(RuntimeError):
    """The wasm could not be loaded as a SpacetimeDB module; the message says why."""


class ReducerNotFound(LookupError):
    pass


@dataclass
class ReducerOutcome:
    """What a caller learns about one reducer call (also: one committed procedure transaction)."""

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
class ProcedureOutcome:
    """A procedure call: `status` "returned" (result_bytes = BSATN of the return value, `value` decoded) or
    "trapped" (a trap, or a return code other than 0: as upstream, a procedure reports failure only by
    trapping, after logging why; the instance is discarded).  Transactions it committed stay committed."""

    procedure: str
    status: str
    result_bytes: bytes = b""
    error: str | None = None
    value: object = None
    duration_us: float = 0.0
    trap_kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "returned"

    @property
    def return_value(self) -> bytes:
        """The BSATN of the return value (what ProcedureResult carries to a client)."""
        return self.result_bytes


@dataclass
class ViewOutcome:
    """A view call: `rows` decoded (one value per row), `rows_bsatn` as the module wrote them; `raw_sql` when
    the view returned a query (ViewResultHeader::RawSql) instead of rows.  status "ok" | "failed" | "trapped"."""

    view: str
    status: str
    rows: list = field(default_factory=list)
    rows_bsatn: list[bytes] = field(default_factory=list)
    raw_sql: str | None = None
    error: str | None = None
    trap_kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class UpdateResult:
    """What `update_module` did: status "unchanged" (same module), "updated" (migrated, data kept) or
    "cleared" (clear=True: data dropped, init ran); `changes` lists the migration steps."""

    status: str
    changes: list[str] = field(default_factory=list)
    module_hash: str = ""


@dataclass
class DatabaseInfo:
    identity: str
    owner: str
    module_hash: str
    created_us: int
    extra: dict = field(default_factory=dict)




@dataclass
class _Catalog:
    """Tables of one module def in one datastore, with the per-table/index codecs the ABI needs."""

    datastore: Datastore
    tables_rt: dict[int, TableRuntime] = field(default_factory=dict)
    indexes_rt: dict[int, IndexRuntime] = field(default_factory=dict)
    table_names: dict[str, int] = field(default_factory=dict)
    index_names: dict[str, int] = field(default_factory=dict)
    scheduled: list[ScheduledTable] = field(default_factory=list)


class Database:
    def __init__(self, wasm: bytes, *, identity: Identity, owner: Identity, data_dir: str | Path | None = None,
                 limits: Limits | None = None, durability: str = "every",
                 on_log: Callable[[LogRecord], None] | None = None, snapshot_every: int | None = 10_000,
                 outbound_http: str = "loopback"):
        if outbound_http not in http_out.POLICIES:
            raise ValueError(f"outbound_http must be one of {http_out.POLICIES}")
        self.identity = identity
        self.owner = owner
        self.limits = limits or Limits(timeout_s=LIMITS.call_timeout_ms / 1000, memory_bytes=LIMITS.wasm_memory_bytes)
        self.wasm = bytes(wasm)
        self.module_hash = _hash(self.wasm)
        self.data_dir = Path(data_dir) if data_dir else None
        if self.data_dir:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_every = snapshot_every
        self.outbound_http = outbound_http
        self._logs = LogStore(self.data_dir)
        self._log_listeners: list[Callable[[LogRecord], None]] = [on_log] if on_log else []
        self._commit_listeners: list[Callable[[ReducerOutcome], None]] = []
        self._lock = threading.RLock()  # one transaction at a time per database (reducers, views, procedure txs)
        self._procs = _ProcedurePool(self)  # procedures run concurrently, each on its own instance
        self._jwts: dict[bytes, bytes] = {}
        self._immediate: deque[tuple[str, bytes]] = deque()
        self._immediate_bytes = 0
        self._draining = False
        self._last_snapshot = -1
        self.module = self._compile(self.wasm)
        self.instances_created = 0
        self.inst: Instance | None = None
        self.env: AbiEnv | None = None
        self.datastore = Datastore()
        self._tables_rt: dict[int, TableRuntime] = {}  # these four dicts are shared with every AbiEnv and
        self._indexes_rt: dict[int, IndexRuntime] = {}  # updated in place when the module changes
        self._table_names: dict[str, int] = {}
        self._index_names: dict[str, int] = {}
        self.scheduler = Scheduler(self)
        inst, env, raw = self._instantiate(self.module)
        try:
            self.mdef: ModuleDef = _decode_def(raw)
        except ModuleDefError as e:
            raise ModuleLoadError(f"invalid module definition: {e}") from None
        self._adopt(inst, env)
        self.commitlog = CommitLog(self.data_dir / "commitlog", durability=durability) if self.data_dir else None
        self.committer = GroupCommitter(self.commitlog, f"durability-{identity.to_hex()[:8]}") \
            if self.commitlog is not None and durability == "group" else None

    # ------------------------------------------------------------------ creation / recovery

    @classmethod
    def create(cls, wasm: bytes, *, owner: Identity, identity: Identity | None = None,
               data_dir: str | Path | None = None, **kw) -> Database:
        """First publish: create the tables and run the `init` reducer (if any) as the owner."""
        identity = identity or Identity.from_bytes(os.urandom(32))
        if data_dir:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            _write_atomic(Path(data_dir) / "module.wasm", wasm)
        db = cls(wasm, identity=identity, owner=owner, data_dir=data_dir, **kw)
        db._install_catalog(db._build_catalog(db.mdef))
        if db.data_dir:
            info = DatabaseInfo(identity.to_hex(), owner.to_hex(), db.module_hash, int(time.time() * 1e6))
            _write_atomic(db.data_dir / "database.json", msgspec.json.encode(info))
        init = db.mdef.lifecycle("init")
        if init is not None:
            out = db._call(init.id, b"", owner.to_bytes(), ZERO_CONN, None)
            if not out.committed:
                raise ModuleLoadError(f"init reducer failed: {out.error}")
        return db

    @classmethod
    def open(cls, data_dir: str | Path, *, before: int | None = None, **kw) -> Database:
        """Reopen a database from its data directory: latest snapshot + commit log replay after it.  `before=K`
        stops short of transaction K (the state K started from; used by replay, on a copy of the data dir)."""
        data_dir = Path(data_dir)
        info = msgspec.json.decode((data_dir / "database.json").read_bytes(), type=DatabaseInfo)
        versioned = data_dir / "modules" / f"{info.module_hash}.wasm"
        wasm = (versioned if versioned.exists() else data_dir / "module.wasm").read_bytes()
        db = cls(wasm, identity=Identity.from_hex(info.identity), owner=Identity.from_hex(info.owner),
                 data_dir=data_dir, **kw)
        if db.module_hash != info.module_hash:
            raise ModuleLoadError(f"{data_dir}: the stored module does not match database.json's module hash")
        db._install_catalog(db._build_catalog(db.mdef))
        assert db.commitlog is not None
        start = 0
        snap = db._pick_snapshot(before)
        if snap is not None:
            offset, state = snap
            db.datastore.restore_state(state)
            db._last_snapshot = offset
            start = offset + 1
        schema_offset = info.extra.get("schema_offset")
        if schema_offset is not None and start <= schema_offset:
            raise ModuleLoadError(f"{data_dir}: the snapshot written when the module was updated (tx "
                                  f"{schema_offset}) is missing or corrupt; the state cannot be recovered")
        for _offset, payload in db.commitlog.replay(start):
            if before is not None and _offset >= before:
                break
            rec = TxRecord.decode(payload)
            plain = {
                "tables": [[tid, rec.inserts.get(tid, []), rec.deletes.get(tid, [])]
                           for tid in {*rec.inserts, *rec.deletes}],
                "sequences": [list(_SEQ.unpack_from(rec.meta, i)) for i in range(0, len(rec.meta), _SEQ.size)],
            }
            db.datastore.apply(db.datastore.txdata_from_plain(plain))
        db.scheduler.rebuild()
        return db

    def _pick_snapshot(self, before: int | None = None) -> tuple[int, dict] | None:
        """Newest valid snapshot taken under the current module (and before tx `before`, if given).  A newer one
        taken under another module is the leftover of an update that crashed before it switched modules: it is
        deleted."""
        store = self.commitlog.snapshots
        for offset in reversed(store.offsets()):
            if before is not None and offset >= before:
                continue
            raw = store.read(offset)
            if raw is None:
                continue
            try:
                state = msgspec.msgpack.decode(raw)
            except msgspec.DecodeError:
                continue
            if state.get("module_hash") == self.module_hash:
                return offset, state
            store.path(offset).unlink(missing_ok=True)
        return None

    def snapshot(self) -> int | None:
        """Write a snapshot of the committed state (rows + sequences) at the last tx offset; returns the offset
        (None without a data dir or before the first transaction).  Older log segments are then compacted."""
        with self._lock:
            if self.commitlog is None or self.commitlog.last_offset < 0:
                return None
            offset = self.commitlog.last_offset
            if offset != self._last_snapshot:
                self.commitlog.write_snapshot(offset, self._snapshot_bytes(self.datastore, self.module_hash))
                self._last_snapshot = offset
                self.commitlog.compact()
            return offset

    @staticmethod
    def _snapshot_bytes(ds: Datastore, module_hash: str) -> bytes:
        state = ds.snapshot_state()
        return msgspec.msgpack.encode({"format": SNAPSHOT_FORMAT, "module_hash": module_hash, **state})

    # ------------------------------------------------------------------ instances

    def _compile(self, wasm: bytes):
        try:
            return compile_module(wasm)
        except Exception as e:  # wasmtime refuses the bytes
            raise ModuleLoadError(f"not a valid wasm module: {str(e).splitlines()[0]}") from None

    def _instantiate(self, module, *, procedure: bool = False,
                     catalog: _Catalog | None = None) -> tuple[Instance, AbiEnv, bytes]:
        """Instantiate (cheap: the compiled module is cached) and run the init sequence of module-abi.md §6;
        returns the instance, its env and the module def bytes."""
        env = AbiEnv(tables=catalog.tables_rt if catalog else self._tables_rt,
                     indexes=catalog.indexes_rt if catalog else self._indexes_rt,
                     table_names=catalog.table_names if catalog else self._table_names,
                     index_names=catalog.index_names if catalog else self._index_names,
                     database_identity=self.identity.to_bytes(), on_log=self._emit_log,
                     schedule_immediate=self._queue_immediate, jwt_for=self._jwts.get,
                     procedure_host=_ProcHost(self) if procedure else None)
        try:
            inst = Instance(module, env.imports(), self.limits)
        except LinkError as e:
            raise ModuleLoadError(f"{e}: SpacetimeDB modules may import only spacetime_10.0..10.5 functions") from None
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:  # memory minimum over the cap, start function trapped
            what = trap_text(str(e))
            if "interrupt" in str(e).lower():
                what = f"its start function exceeded the time limit of {self.limits.timeout_s:g} s ({what})"
            raise ModuleLoadError(f"the module could not be instantiated: {what}") from None
        env.inst = inst
        env.mv = inst.refresh_memory()
        names = [e.name for e in module.exports]
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
                    raise ModuleLoadError(f"__setup__ failed: {_error_text(env.sinks[sink])}")
            sink = env.new_sink()
            inst.export("__describe_module__")(sink)
            raw = bytes(env.sinks[sink])
        except Trap as e:
            raise ModuleLoadError(f"the module trapped while starting: {e}") from None
        finally:
            env.end_call()
        self.instances_created += 1
        return inst, env, raw

    def _adopt(self, inst: Instance, env: AbiEnv) -> None:
        self.inst, self.env = inst, env
        try:
            self._call_reducer_export = inst.export("__call_reducer__", exact=_CALL_REDUCER_PARAMS)
        except ValueError:  # not the ABI's signature: the plain caller (the call then fails as it always did)
            self._call_reducer_export = inst.export("__call_reducer__")

    def _new_instance(self) -> None:
        inst, env, _ = self._instantiate(self.module)
        self._adopt(inst, env)

    def _build_catalog(self, mdef: ModuleDef, keep: _Catalog | None = None) -> _Catalog:
        """A fresh datastore with `mdef`'s tables.  New tables get ids in lexicographic order of their
        canonical names (as upstream assigns them); with `keep`, tables and indexes that exist there keep
        their ids (a migration), and new ids continue after the old ones."""
        ds = Datastore(first_table_id=max([4095, *(keep.table_names.values() if keep else ())]) + 1,
                       first_index_id=max([4095, *(keep.index_names.values() if keep else ())]) + 1)
        cat = _Catalog(ds)
        ts = mdef.typespace
        old_tables = {}
        if keep is not None:
            for name, tid in keep.table_names.items():
                old_tables[name] = tid
        tables = sorted(mdef.tables, key=lambda t: (t.name not in old_tables, t.name))
        for t in tables:
            decode, encode_row = row_codec(t.row_type, ts)
            col_types = [ty for _, ty in t.row_type.elements]
            unique_sets = {tuple(u) for u in t.unique}
            tid_keep = old_tables.get(t.name)
            old_ix = {}
            if tid_keep is not None:
                old_ix = {ix.name: ix.index_id for ix in keep.datastore.schema(tid_keep).indexes}
            indexes = []
            for ix in t.indexes:
                fns = tuple(_key_fn(col_types[c], ts) for c in ix.columns)
                aliases = tuple({ix.source_name} - {ix.name}) if ix.source_name else ()
                indexes.append(IndexSchema(ix.name, ix.columns, IndexAlgo[ix.algo.upper()],
                                           unique=tuple(ix.columns) in unique_sets, aliases=aliases, key_fns=fns,
                                           index_id=old_ix.get(ix.name)))
            seqs = tuple(SequenceSchema(s.column, s.start, s.min_value,
                                        _cap(s.max_value, col_types[s.column]), s.increment) for s in t.sequences)
            aliases = (t.source_name,) if t.source_name != t.name else ()
            sched = None
            if t.schedule:
                kind, fn = mdef.scheduled_function(t.schedule.reducer)
                sched = ScheduledTable(-1, t.name, t.schedule.at_column, fn.id if kind == "reducer" else -1,
                                       fn.name if kind == "procedure" else None)
            tid = ds.create_table(TableSchema(
                t.name, t.column_names, decode, encode_row, tuple(indexes), tuple(t.unique), seqs,
                t.primary_key, t.is_event, aliases, row_check=self.scheduler.row_check(sched) if sched else None,
                table_id=tid_keep))
            if sched:
                cat.scheduled.append(ScheduledTable(tid, sched.name, sched.at_column, sched.reducer_id,
                                                    sched.procedure))
            cat.table_names[t.name] = tid
            cat.table_names[t.source_name] = tid
            cat.tables_rt[tid] = TableRuntime(tid, decoder(t.row_type, ts), tuple(encoder(ty, ts) for ty in col_types))
            for ix in t.indexes:
                iid = ds.index_id(ix.name)
                cat.index_names[ix.name] = iid
                if ix.source_name:
                    cat.index_names[ix.source_name] = iid
                cat.indexes_rt[iid] = IndexRuntime(iid, ix.columns,
                                                   tuple(decoder(col_types[c], ts) for c in ix.columns))
        return cat

    def _install_catalog(self, cat: _Catalog) -> None:
        self.datastore = cat.datastore
        for mine, theirs in ((self._tables_rt, cat.tables_rt), (self._indexes_rt, cat.indexes_rt),
                             (self._table_names, cat.table_names), (self._index_names, cat.index_names)):
            mine.clear()
            mine.update(theirs)
        self.scheduler.tables.clear()
        for st in cat.scheduled:
            self.scheduler.register(st)

    def _create_tables(self) -> None:
        self._install_catalog(self._build_catalog(self.mdef))

    # ------------------------------------------------------------------ republish

    def update_module(self, wasm: bytes, *, clear: bool = False) -> UpdateResult:
        """Republish: replace the module.  The same module again changes nothing.  A changed module is
        migrated automatically when every schema change is one harness/host/migrate.py allows (data kept);
        otherwise `MigrationError` lists the incompatible changes and nothing changes.  clear=True drops all
        data, creates the new tables and runs `init`.  With a data dir the new module and a snapshot of the
        migrated state are persisted before the switch, so `Database.open` recovers the new state."""
        wasm = bytes(wasm)
        new_hash = _hash(wasm)
        with self._procs.exclusive(), self._lock:
            if new_hash == self.module_hash and not clear:
                return UpdateResult("unchanged", [], new_hash)
            module = self._compile(wasm)
            probe = _Catalog(Datastore())
            inst, env, raw = self._instantiate(module, catalog=probe)
            try:
                mdef = _decode_def(raw)
            except ModuleDefError as e:
                raise ModuleLoadError(f"invalid module definition: {e}") from None
            if clear:
                cat = self._build_catalog(mdef)
                changes = ["drop all data", "create tables " + ", ".join(sorted(t.name for t in mdef.tables))]
            else:
                mig = plan(self.mdef, mdef)
                if not mig.ok:
                    raise MigrationError(mig.incompatible)
                changes = mig.changes
                cat = self._build_catalog(mdef, keep=_Catalog(self.datastore, table_names=self._table_names,
                                                              index_names=self._index_names))
                state = self.datastore.snapshot_state()
                if mig.appended:
                    extra = {self._table_names[name]: tail for name, tail in mig.appended.items()}
                    state["tables"] = [[tid, [r + extra[tid] for r in rows] if tid in extra else rows]
                                       for tid, rows in state["tables"]]
                cat.datastore.restore_state(state)
            for d, src in ((probe.tables_rt, cat.tables_rt), (probe.indexes_rt, cat.indexes_rt),
                           (probe.table_names, cat.table_names), (probe.index_names, cat.index_names)):
                d.update(src)  # the staged instance's env sees the new tables
            if clear:
                init = mdef.lifecycle("init")
                if init is not None:
                    tx = cat.datastore.begin()
                    status, message, _ = self._run_reducer(inst.export("__call_reducer__"), env, tx, init.name,
                                                           init.id, b"", self.owner.to_bytes(), ZERO_CONN,
                                                           Timestamp(int(time.time() * 1e6)))
                    if status != "committed":
                        raise ModuleLoadError(f"init reducer failed: {message}")
                    tx.commit()
            if self.data_dir is not None:
                self._persist_update(wasm, new_hash, cat.datastore)
            # switch: nothing below can fail on the module's account
            self.wasm, self.module, self.module_hash, self.mdef = wasm, module, new_hash, mdef
            self._install_catalog(cat)
            env.tables, env.indexes = self._tables_rt, self._indexes_rt
            env.table_names, env.index_names = self._table_names, self._index_names
            self._adopt(inst, env)
            self._procs.discard_idle()
            self.scheduler.rebuild()
            self._host_log(f"module updated to {new_hash[:16]} ({'cleared' if clear else 'migrated'}): "
                           + "; ".join(changes or ["no schema changes"]), level=2)
            return UpdateResult("cleared" if clear else "updated", changes, new_hash)

    def _persist_update(self, wasm: bytes, new_hash: str, ds: Datastore) -> None:
        """Crash-safe order: new module file, an empty marker record, a snapshot of the new state at the marker
        (tagged with the new module's hash), then database.json (the switch), then module.wasm."""
        assert self.data_dir is not None and self.commitlog is not None
        modules = self.data_dir / "modules"
        modules.mkdir(exist_ok=True)
        _write_atomic(modules / f"{new_hash}.wasm", wasm)
        if not (modules / f"{self.module_hash}.wasm").exists():
            _write_atomic(modules / f"{self.module_hash}.wasm", self.wasm)
        offset = self.commitlog.append(TxRecord(self.commitlog.next_offset, int(time.time() * 1e6),
                                                f"{UPDATE_MARKER} {new_hash}", {}, {}, b"").encode())
        if self.committer is not None:
            self.committer.notify()
        self.commitlog.write_snapshot(offset, self._snapshot_bytes(ds, new_hash))
        path = self.data_dir / "database.json"
        info = msgspec.json.decode(path.read_bytes(), type=DatabaseInfo)
        info.module_hash = new_hash
        info.extra = {**info.extra, "schema_offset": offset}
        _write_atomic(path, msgspec.json.encode(info))  # the switch
        self._last_snapshot = offset
        _write_atomic(self.data_dir / "module.wasm", wasm)

    # ------------------------------------------------------------------ reducers

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

    def client_connected(self, sender: Identity, connection_id: ConnectionId,
                         jwt_payload: str | bytes | None = None) -> ReducerOutcome:
        """Run the client_connected reducer; a failure means the connection must be refused.

        `jwt_payload` is the JSON payload of the token the client authenticated with: as upstream stores it
        in st_connection_credentials on connect, `get_jwt` returns it for this connection until
        `client_disconnected` (or a refused connect) forgets it."""
        if jwt_payload is not None:
            self.set_connection_jwt(connection_id, jwt_payload)
        out = self._lifecycle("client_connected", sender, connection_id)
        if not out.committed:
            self.set_connection_jwt(connection_id, None)
        return out

    def client_disconnected(self, sender: Identity, connection_id: ConnectionId) -> ReducerOutcome:
        try:
            return self._lifecycle("client_disconnected", sender, connection_id)
        finally:
            self.set_connection_jwt(connection_id, None)

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

    def _run_reducer(self, export, env: AbiEnv, tx: Tx, name: str, rid: int, args: bytes, sender: bytes,
                     conn: bytes, ts: Timestamp) -> tuple[str, str | None, Trap | None]:
        """One __call_reducer__ on `env`'s instance inside `tx`; on failure or trap `tx` is rolled back.
        Returns (status, error message, trap)."""
        env.begin_call(name, tx)
        err_sink = env.new_sink()
        src = env.new_source(args)
        try:
            rc = export(rid, *_SENDER.unpack(sender), *_CONN.unpack(conn), ts.micros, src, err_sink)
        except Trap as e:
            tx.rollback()
            env.end_call()
            return "trapped", _trap_message(e), e
        err = env.sinks.get(err_sink)
        message = _error_text(err) if err else ""
        env.end_call()
        if rc != 0:
            tx.rollback()
            if rc != ERR_HOST_CALL_FAILURE:
                message = message or f"reducer returned unknown code {rc}"
            return "failed", message, None
        return "committed", None, None

    def _call(self, rid: int, args: bytes, sender: bytes, conn: bytes, timestamp: Timestamp | None,
              before_commit: Callable | None = None) -> ReducerOutcome:
        rdef = self.mdef.reducers[rid]
        with self._lock:
            ts = timestamp or _mk_timestamp(time.time_ns() // 1000)
            if self.inst is None:
                self._new_instance()
            tx = self.datastore.begin()
            t0 = time.perf_counter()
            status, message, trap = self._run_reducer(self._call_reducer_export, self.env, tx, rdef.name, rid,
                                                      args, sender, conn, ts)
            if status == "committed" and before_commit is None:  # the common case, without the branches below
                out = self._commit(rdef.name, ts, tx, t0, sender, conn, args)
                if self._immediate and not self._draining:
                    self._drain_immediate()
                return out
            if trap is not None:
                self.inst = None  # replaced lazily: the next call gets a fresh instance
                self._emit_log(LogRecord(0, None, None, None, f"reducer {rdef.name} trapped ({trap.kind}): {trap}",
                                         int(time.time() * 1e6), rdef.name))
                out = ReducerOutcome(rdef.name, "trapped", message, duration_us=_us(t0), timestamp=ts,
                                     trap_kind=trap.kind)
            elif status != "committed":
                self.log_system(message or "the reducer failed", rdef.name)  # as upstream: one Error line
                out = ReducerOutcome(rdef.name, "failed", message, duration_us=_us(t0), timestamp=ts)
            else:
                if before_commit is not None:
                    before_commit(tx)
                out = self._commit(rdef.name, ts, tx, t0, sender, conn, args)
            self._drain_immediate()
            return out

    def _delete_rows(self, name: str, table_id: int, rows: list[bytes], ts: Timestamp) -> None:
        """Delete `rows` of a table in a transaction of their own (a scheduled procedure's row, before it runs)."""
        with self._lock:
            tx = self.datastore.begin()
            tx.delete_all_by_eq(table_id, rows)
            self._commit(name, ts, tx, time.perf_counter())

    def _commit(self, name: str, ts: Timestamp, tx: Tx, t0: float, *inputs: bytes) -> ReducerOutcome:
        """Commit `tx` (the caller holds self._lock), make it durable, tell the scheduler and listeners.
        `inputs` (caller identity, connection id, BSATN args) go into the record so the call can be replayed.
        A transaction that changed no row has nothing to persist or schedule (most of a no-op call's cost)."""
        txdata = tx.commit()
        if txdata.tables:
            offset = self._persist(name, ts, txdata, b"".join(inputs))
            self.scheduler.on_commit(txdata, ts.micros)
        else:
            offset = None
        out = ReducerOutcome(name, "committed", None, txdata, offset, (time.perf_counter() - t0) * 1e6, ts)
        for fn in self._commit_listeners:
            fn(out)
        return out

    def _persist(self, reducer: str, ts: Timestamp, txdata: TxData, inputs: bytes = b"") -> int | None:
        """Append the transaction to the commit log; under 'every' it is fsynced before we return, under
        'group' the durability thread fsyncs it with its batch (`wait_durable`, durability.py)."""
        if self.commitlog is None or txdata.is_empty():
            return None
        meta = b"".join(_SEQ.pack(tid, col, v & 0x7FFFFFFFFFFFFFFF) for (tid, col), v in txdata.sequences.items())
        deltas = txdata.tables
        offset = self.commitlog.append(pack_tx(self.commitlog.next_offset, ts.micros, reducer,
                                               {tid: d.inserts for tid, d in deltas.items() if d.inserts},
                                               {tid: d.deletes for tid, d in deltas.items() if d.deletes},
                                               meta, inputs))
        if self.committer is not None:
            self.committer.notify()
        if self.snapshot_every and offset - self._last_snapshot >= self.snapshot_every:
            self.snapshot()
        return offset

    def subscribe_commits(self, fn: Callable[[ReducerOutcome], None]) -> None:
        """Call `fn(outcome)` after every committed transaction (reducers, scheduled and immediate calls,
        procedure transactions), in commit order, while the database lock is still held."""
        self._commit_listeners.append(fn)

    add_commit_listener = subscribe_commits

    # ------------------------------------------------------------------ schedule_immediate, JWTs

    def _queue_immediate(self, name: str, args: bytes) -> None:
        size = _immediate_size(name, args)
        if self._immediate_bytes + size > LIMITS.immediate_queue_bytes:
            raise HostTrap(f"more than {LIMITS.immediate_queue_bytes} bytes of schedule_immediate calls are "
                           "waiting to run (limit immediate_queue_bytes)")
        self._immediate.append((name, bytes(args)))
        self._immediate_bytes += size

    def _drain_immediate(self) -> None:
        """Run the calls volatile_nonatomic_schedule_immediate queued, after the call that queued them (they
        run even if that call failed, as upstream: not rolled back).  Sender is the database identity."""
        if self._draining or not self._immediate:
            return
        self._draining = True
        try:
            for _ in range(MAX_IMMEDIATE_CHAIN):
                if not self._immediate:
                    break
                name, args = self._immediate.popleft()
                self._immediate_bytes -= _immediate_size(name, args)
                try:
                    rid = self.mdef.reducer(name).id
                except KeyError:
                    self._host_log(f"schedule_immediate: no reducer named {name!r}")
                    continue
                self._call(rid, args, self.identity.to_bytes(), ZERO_CONN, None)
        finally:
            self._draining = False

    def run_immediate(self) -> None:
        """Run calls still queued by schedule_immediate (after a chain longer than MAX_IMMEDIATE_CHAIN)."""
        with self._lock:
            self._drain_immediate()

    def set_connection_jwt(self, connection_id: ConnectionId | bytes, payload: str | bytes | None) -> None:
        """Register the JWT payload (JSON text) a connection authenticated with; `get_jwt` returns it.
        None forgets it (call on disconnect)."""
        key = connection_id if isinstance(connection_id, bytes) else connection_id.to_bytes()
        if payload is None:
            self._jwts.pop(key, None)
        else:
            self._jwts[key] = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)

    # ------------------------------------------------------------------ procedures

    def call_procedure(self, procedure: str, args: bytes | Sequence | dict = b"", *, sender: Identity | None = None,
                       connection_id: ConnectionId | None = None,
                       timestamp: Timestamp | None = None) -> ProcedureOutcome:
        """Run a procedure on the procedure instance.  It has no transaction on entry; the ones it opens with
        procedure_start_mut_tx commit durably on procedure_commit_mut_tx; one left open is rolled back."""
        pdef = next((p for p in self.mdef.procedures if procedure in (p.name, p.source_name)), None)
        if pdef is None:
            raise ReducerNotFound(f"no such procedure: {procedure!r}")
        pid = self.mdef.procedures.index(pdef)
        if not isinstance(args, (bytes, bytearray, memoryview)):
            args = self.encode_args(pdef.params, args)
        sender_b = (sender or self.owner).to_bytes()
        conn_b = connection_id.to_bytes() if connection_id else ZERO_CONN
        ts = timestamp or Timestamp(int(time.time() * 1e6))
        if "__call_procedure__" not in [e.name for e in self.module.exports]:
            raise ModuleLoadError("the module does not export __call_procedure__")
        with self._procs.lease() as lease:
            inst, env = lease.inst, lease.env
            export = inst.export("__call_procedure__")
            host: _ProcHost = env.procedure_host
            host.name = pdef.name
            env.begin_call(pdef.name, None, procedure=True)
            sink = env.new_sink()
            src = env.new_source(bytes(args))
            t0 = time.perf_counter()
            try:
                rc = export(pid, *struct.unpack("<4Q", sender_b), *struct.unpack("<2Q", conn_b), ts.micros,
                            src, sink)
                trap = None
            except Trap as e:
                rc, trap = None, e
            left_open, env.tx = env.tx, None
            if left_open is not None:
                host.abort_tx(left_open)
                if trap is None:
                    self._host_log(f"procedure {pdef.name} returned with a transaction open: rolled back", 1)
            data = bytes(env.sinks.get(sink, b""))
            env.end_call()
            if trap is not None:
                lease.discard()
                self._emit_log(LogRecord(0, None, None, None, f"procedure {pdef.name} trapped ({trap.kind}): {trap}",
                                         int(time.time() * 1e6), pdef.name))
                out = ProcedureOutcome(pdef.name, "trapped", error=_trap_message(trap), duration_us=_us(t0),
                                       trap_kind=trap.kind)
            elif rc != 0:  # upstream: only 0 or a trap; the sink is ignored and the instance discarded
                lease.discard()
                msg = (f"__call_procedure__ returned unexpected code {rc}. "
                       "Procedures should return code 0 or trap.")
                self._emit_log(LogRecord(0, None, None, None, f"procedure {pdef.name}: {msg}",
                                         int(time.time() * 1e6), pdef.name))
                out = ProcedureOutcome(pdef.name, "trapped", error=msg, duration_us=_us(t0), trap_kind="bad_return")
            else:
                value = None
                try:
                    value = decoder(pdef.return_type, self.mdef.typespace)(data, 0)[0]
                except Exception:  # noqa: BLE001 - the bytes are still returned
                    pass
                out = ProcedureOutcome(pdef.name, "returned", data, None, value, _us(t0))
        with self._lock:
            self._drain_immediate()
        return out

    @property
    def procedures_running(self) -> int:
        """Procedures and HTTP handlers running now (each holds one procedure instance)."""
        return self._procs.busy

    # ------------------------------------------------------------------ HTTP handlers

    def call_http_handler(self, method: str, path: str, **kw) -> http_in.HttpHandlerOutcome:
        """Serve one request to the module's HTTP routes (`path`: after `/route`); see harness/host/http_in.py."""
        return http_in.call_http_handler(self, method, path, **kw)

    # ------------------------------------------------------------------ views

    def call_view(self, view: str, args: bytes | Sequence | dict = b"", *,
                  sender: Identity | None = None, reads: set[int] | None = None) -> ViewOutcome:
        """Evaluate a view over committed state in a read-only transaction (anonymous views ignore sender).
        `reads`, if given, receives the ids of the tables the view read (its result depends on nothing else)."""
        vdef = next((v for v in self.mdef.views if view in (v.name, v.source_name)), None)
        if vdef is None:
            raise ReducerNotFound(f"no such view: {view!r}")
        if not isinstance(args, (bytes, bytearray, memoryview)):
            args = self.encode_args(vdef.params, args)
        export_name = "__call_view_anon__" if vdef.is_anonymous else "__call_view__"
        if export_name not in [e.name for e in self.module.exports]:
            raise ModuleLoadError(f"the module does not export {export_name}")
        with self._lock:
            if self.inst is None:
                self._new_instance()
            env = self.env
            export = self.inst.export(export_name)
            with self.datastore.read() as rtx:
                env.begin_call(vdef.name, rtx if reads is None else _ReadLog(rtx, self.datastore, reads),
                               read_only=True)
                sink = env.new_sink()
                src = env.new_source(bytes(args))
                try:
                    if vdef.is_anonymous:
                        rc = export(vdef.index, src, sink)
                    else:
                        rc = export(vdef.index, *struct.unpack("<4Q", (sender or self.owner).to_bytes()), src, sink)
                except Trap as e:
                    env.end_call()
                    self.inst = None
                    self._emit_log(LogRecord(0, None, None, None, f"view {vdef.name} trapped ({e.kind}): {e}",
                                             int(time.time() * 1e6), vdef.name))
                    return ViewOutcome(vdef.name, "trapped", error=_trap_message(e), trap_kind=e.kind)
                data = bytes(env.sinks.get(sink, b""))
                env.end_call()
        if rc == 1:
            return ViewOutcome(vdef.name, "failed", error=_error_text(data))
        if rc not in (0, 2):
            return ViewOutcome(vdef.name, "failed", error=f"view returned unknown code {rc}")
        try:
            off = 0
            if rc == 2:
                if not data:
                    raise ValueError("empty ViewResultHeader")
                if data[0] == 1:
                    (n,) = struct.unpack_from("<I", data, 1)
                    return ViewOutcome(vdef.name, "ok", raw_sql=data[5:5 + n].decode("utf-8"))
                if data[0] != 0:
                    raise ValueError(f"invalid ViewResultHeader tag {data[0]}")
                off = 1
            return self._view_rows(vdef, data, off)
        except (ValueError, struct.error, IndexError) as e:
            return ViewOutcome(vdef.name, "failed", error=f"view {vdef.name} wrote an invalid result: {e}")

    def _view_rows(self, vdef, data: bytes, off: int) -> ViewOutcome:
        ts = self.mdef.typespace
        ty = resolve(vdef.return_type, ts)
        if isinstance(ty, ArrayType):
            elem = ty.elem
        elif getattr(ty, "is_option", lambda: False)():
            elem = ty.elements[0][1]
        else:
            elem = ty
        dec = decoder(elem, ts)
        (n,) = struct.unpack_from("<I", data, off)
        off += 4
        rows, raw = [], []
        for _ in range(n):
            v, end = dec(data, off)
            rows.append(v)
            raw.append(data[off:end])
            off = end
        if off != len(data):
            raise ValueError("trailing bytes after the rows")
        return ViewOutcome(vdef.name, "ok", rows, raw)

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

    def log_system(self, message: str, function: str = SYSTEM_LOG_NAME, level: int = 0) -> None:
        """A line in the module's log written by the host, the way upstream writes them (target and filename
        ``__spacetimedb__``, ``function`` the reducer concerned); level 0 is Error, 2 Info."""
        self._emit_log(LogRecord(level, SYSTEM_LOG_NAME, SYSTEM_LOG_NAME, None, message, int(time.time() * 1e6),
                                 function))

    def _host_log(self, message: str, level: int = 0) -> None:
        self._emit_log(LogRecord(level, "host", None, None, message, int(time.time() * 1e6)))

    def logs(self, num_lines: int | None = None) -> list[LogRecord]:
        """The module's log, oldest first (the newest `num_lines` records when given); with a data dir it is
        read back from `module_logs.jsonl`, so it includes records written before a restart."""
        return self._logs.read(num_lines)

    def subscribe_logs(self, fn: Callable[[LogRecord], None]) -> None:
        self._log_listeners.append(fn)

    def _emit_log(self, rec: LogRecord) -> None:
        self._logs.append(rec)
        for fn in self._log_listeners:
            fn(rec)

    @property
    def written_offset(self) -> int | None:
        """Tx offset of the last transaction written to the commit log (None without a data dir)."""
        return self.commitlog.last_offset if self.commitlog is not None else None

    def pending_durability(self) -> bool:
        """True when commits are acknowledged by a durability thread (group commit), so readers of the state
        must wait for `durable_offset` before acknowledging what they saw."""
        return self.committer is not None

    def wait_durable(self, offset: int | None, timeout: float | None = None) -> bool:
        """Block until tx `offset` is fsynced (at once when not in group mode or `offset` is None)."""
        if offset is None or self.committer is None:
            return True
        return self.committer.wait_durable(offset, timeout)

    def close(self) -> None:
        self.scheduler.stop()
        if self.committer is not None:
            self.committer.stop()
        if self.commitlog is not None:
            self.commitlog.close()
            self.commitlog = None
        self._logs.close()


class _ReadLog:
    """A view's read transaction that notes which tables the view reads (callers re-run a view only after a
    commit that changed one of them)."""

    def __init__(self, rtx, datastore: Datastore, reads: set[int]):
        self._rtx, self._ds, self._reads = rtx, datastore, reads

    def _index(self, index_id: int) -> None:
        try:
            self._reads.add(self._ds.index_schema(index_id)[0])
        except LookupError:
            pass  # the read itself reports the bad id

    def row_count(self, table_id: int) -> int:
        self._reads.add(table_id)
        return self._rtx.row_count(table_id)

    def scan_bsatn(self, table_id: int) -> list[bytes]:
        self._reads.add(table_id)
        return self._rtx.scan_bsatn(table_id)

    def index_point_bsatn(self, index_id: int, key):
        self._index(index_id)
        return self._rtx.index_point_bsatn(index_id, key)

    def index_range_bsatn(self, index_id: int, prefix, start, end):
        self._index(index_id)
        return self._rtx.index_range_bsatn(index_id, prefix, start, end)

    def __getattr__(self, name):
        return getattr(self._rtx, name)


class _ProcHost(ProcedureHost):
    """Transactions, sleep and HTTP for the procedure instance of one database."""

    def __init__(self, db: Database):
        self.db = db
        self.name = "procedure"
        self.ts: Timestamp | None = None
        self.t0 = 0.0

    def start_tx(self) -> tuple[Tx, int]:
        db = self.db
        db._lock.acquire()  # held until commit/abort: the tx is one of the database's serial transactions
        try:
            tx = db.datastore.begin()
        except BaseException:
            db._lock.release()
            raise
        self.ts = Timestamp(int(time.time() * 1e6))
        self.t0 = time.perf_counter()
        return tx, self.ts.micros

    def commit_tx(self, tx: Tx) -> None:
        try:
            self.db._commit(self.name, self.ts, tx, self.t0)
        finally:
            self.db._lock.release()

    def abort_tx(self, tx: Tx) -> None:
        try:
            if tx.is_open:
                tx.rollback()
        finally:
            self.db._lock.release()

    def sleep_until(self, micros: int) -> int:
        delay = micros / 1e6 - time.time()
        if delay > 0:
            time.sleep(delay)
        return int(time.time() * 1e6)

    def http(self, request: bytes, body: bytes) -> tuple[bytes, bytes]:
        return http_out.perform(request, body, self.db.outbound_http)


def _decode_def(raw: bytes) -> ModuleDef:
    """The module's definition, within the host's size and entry-count limits (docs/limits.md)."""
    return decode_module_def(raw, max_bytes=LIMITS.module_def_bytes, max_items=LIMITS.module_def_items)


class _Lease:
    """One procedure instance lent to one call; `discard()` after a trap so it is not reused."""

    __slots__ = ("inst", "env", "keep")

    def __init__(self, inst: Instance, env: AbiEnv):
        self.inst, self.env, self.keep = inst, env, True

    def discard(self) -> None:
        self.keep = False


class _ProcedurePool:
    """The procedure instances of one database.  As upstream, each procedure (or HTTP handler) call runs on an
    instance of its own, so procedures run concurrently with each other and with reducers; at most
    `LIMITS.procedure_instances` at once (upstream: `procedure-instance-pool-size`), further calls wait for a
    free instance.  Idle instances are kept for reuse until the module changes."""

    def __init__(self, db: Database):
        self.db = db
        self.busy = 0
        self._idle: list[tuple[Instance, AbiEnv]] = []
        self._cv = threading.Condition()
        self._paused = 0
        self._generation = 0

    @contextlib.contextmanager
    def lease(self):
        with self._cv:
            while self._paused or self.busy >= max(1, LIMITS.procedure_instances):
                self._cv.wait()
            self.busy += 1
            generation = self._generation
            item = self._idle.pop() if self._idle else None
        lease = None
        try:
            if item is None:
                inst, env, _ = self.db._instantiate(self.db.module, procedure=True)
                item = (inst, env)
            lease = _Lease(*item)
            yield lease
        finally:
            with self._cv:
                self.busy -= 1
                if lease is not None and lease.keep and generation == self._generation:
                    self._idle.append(item)
                self._cv.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        """Wait until no procedure runs and start none meanwhile (a module update swaps the module)."""
        with self._cv:
            self._paused += 1
            while self.busy:
                self._cv.wait()
        try:
            yield
        finally:
            with self._cv:
                self._paused -= 1
                self._cv.notify_all()

    def discard_idle(self) -> None:
        """Forget the idle instances (they run the old module); calls running now return theirs to nobody."""
        with self._cv:
            self._idle.clear()
            self._generation += 1


def _key_fn(ty, ts):
    fn = sort_key(ty, ts)
    return None if fn is identity_key else fn  # natural Python order already is SATS order: no key needed


def _cap(max_value: int | None, ty) -> int | None:
    from spacetime_core.sats.types import INT_RANGES

    rng = INT_RANGES.get(getattr(ty, "tag", None))
    if rng is None:
        return max_value
    hi = rng[1]
    return hi if max_value is None else min(max_value, hi)


def _immediate_size(name: str, args: bytes) -> int:
    return len(name) + len(args) + 64  # + the tuple and deque slot, roughly


def _error_text(data: bytes | bytearray) -> str:
    """A module's error message, cut to `error_message_bytes` so callers and logs never carry megabytes."""
    cap = LIMITS.error_message_bytes
    text = bytes(data[:cap]).decode("utf-8", "replace")
    return text if len(data) <= cap else f"{text}... [{len(data) - cap} more bytes cut: limit error_message_bytes]"


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


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


__all__ = ["Database", "DatabaseInfo", "MigrationError", "ModuleLoadError", "ProcedureOutcome", "ReducerNotFound",
           "ReducerOutcome", "UpdateResult", "ViewOutcome"]
