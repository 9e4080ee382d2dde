"""Replay one committed transaction for debugging: re-run the reducer call that produced transaction K on the
state just before it, with its original caller, connection id, timestamp and arguments (stored in the commit
record), and compare what it writes with what was recorded.

The data directory is copied first, so replaying never changes the database.  `native=PATH` runs the module's
Python source natively (harness.host.native) instead of the wasm: tracebacks then name real files and lines,
breakpoints work, and `post_mortem` gets the exception of a failing reducer.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from harness.commitlog import CommitLog
from harness.commitlog.record import TxRecord

from .abi import LogRecord

_INPUTS_HEAD = 32 + 16  # caller identity, connection id; the rest is the BSATN of the arguments


class ReplayError(Exception):
    """The transaction cannot be replayed (no such offset, not a reducer call, recorded without inputs, ...)."""


@dataclass
class ReplayResult:
    offset: int
    reducer: str
    caller: str  # identity hex
    timestamp_us: int
    args: Any  # the decoded arguments (a tuple by parameter)
    status: str  # "committed" | "failed" | "trapped" | "raised" (native: an exception escaped the SDK)
    error: str | None
    same_writes: bool  # the replay wrote exactly the rows the original transaction wrote
    logs: list[LogRecord] = field(default_factory=list)
    exception: BaseException | None = None  # native mode: the reducer's exception (with its traceback)


def find_database_dir(server_data_dir: Path, database: str) -> Path:
    """The data dir of database `database` (name or identity hex) under a `spacetime-py start` data dir, or the
    folder itself when it is a database's own data dir (it has database.json)."""
    root = Path(server_data_dir)
    if (root / "database.json").is_file():
        return root
    try:
        registry = msgspec.json.decode((root / "registry.json").read_bytes())
    except (OSError, msgspec.DecodeError) as e:
        raise ReplayError(f"{root} is neither a database's data dir nor a server data dir ({e})") from None
    known = []
    for identity, entry in registry.get("databases", {}).items():
        names = entry.get("names", [])
        known += names or [identity]
        if database == identity or database in names:
            return root / "databases" / identity
    raise ReplayError(f"no database {database!r} in {root} (databases: {', '.join(sorted(known)) or 'none'})")


def read_record(db_dir: Path, offset: int) -> TxRecord:
    log = CommitLog(Path(db_dir) / "commitlog", durability="none")
    try:
        for off, payload in log.replay(offset):
            if off == offset:
                return TxRecord.decode(payload)
            break
    except Exception as e:  # noqa: BLE001 - compacted away, corrupt: said plainly
        raise ReplayError(f"cannot read transaction {offset}: {e}") from None
    finally:
        log.close()
    raise ReplayError(f"no transaction {offset} in {db_dir} (last offset: {log.last_offset})")


def replay_transaction(db_dir: str | Path, offset: int, *, native: str | Path | None = None,
                       on_log: Callable[[LogRecord], None] | None = None) -> ReplayResult:
    """Re-run transaction `offset` of the database in `db_dir` (see the module docstring)."""
    db_dir = Path(db_dir)
    if not (db_dir / "database.json").is_file():
        raise ReplayError(f"{db_dir} is not a database data dir (no database.json)")
    with tempfile.TemporaryDirectory(prefix="spacetime-py-replay-") as tmp:
        copy = Path(tmp) / "db"
        shutil.copytree(db_dir, copy)  # opening a commit log may repair its tail: never on the original
        return _replay_copy(copy, offset, native, on_log)


def _replay_copy(copy: Path, offset: int, native: str | Path | None,
                 on_log: Callable[[LogRecord], None] | None) -> ReplayResult:
    from spacetime_core.sats import Identity, Timestamp

    from .database import UPDATE_MARKER, Database

    rec = read_record(copy, offset)
    if rec.reducer.startswith(UPDATE_MARKER):
        raise ReplayError(f"transaction {offset} is a module update, not a reducer call")
    if len(rec.inputs) < _INPUTS_HEAD:
        raise ReplayError(f"transaction {offset} ({rec.reducer}) was recorded without its inputs (written by an "
                          "older version, or a procedure's transaction), so it cannot be replayed")
    info = msgspec.json.decode((copy / "database.json").read_bytes())
    schema_offset = (info.get("extra") or {}).get("schema_offset")
    if schema_offset is not None and offset <= schema_offset:
        raise ReplayError(f"transaction {offset} ran under an earlier module (the module was replaced at "
                          f"transaction {schema_offset}); replay runs the current module only")
    caller, conn, args = rec.inputs[:32], rec.inputs[32:48], rec.inputs[48:]
    logs: list[LogRecord] = []

    def keep(r: LogRecord) -> None:
        logs.append(r)
        if on_log is not None:
            on_log(r)

    try:
        db = Database.open(copy, before=offset, durability="none", snapshot_every=None, on_log=keep)
    except Exception as e:  # noqa: BLE001 - e.g. the log before K was compacted into a later snapshot
        raise ReplayError(f"cannot rebuild the state before transaction {offset}: {e}") from None
    try:
        rdef = db.mdef.reducer(rec.reducer)
        decoded = _decode_args(db, rdef, args)
        ts = Timestamp(rec.timestamp_us)
        exc: BaseException | None = None
        if native is None:
            out = db._call(rdef.id, args, caller, conn, ts)
            status, error, txdata = out.status, out.error, out.txdata
        else:
            status, error, txdata, exc = _call_native(db, native, rdef, args, caller, conn, ts)
        return ReplayResult(offset, rec.reducer, Identity.from_bytes(caller).to_hex(), rec.timestamp_us,
                            decoded, status, error, _same_writes(rec, txdata), logs, exc)
    finally:
        db.close()


def _decode_args(db: Any, rdef: Any, args: bytes) -> Any:
    from spacetime_core.sats import decode

    try:
        return decode(rdef.params, args, db.mdef.typespace)
    except Exception:  # noqa: BLE001 - shown as bytes when the module changed shape
        return args


def _same_writes(rec: TxRecord, txdata: Any) -> bool:
    if txdata is None:
        return not rec.inserts and not rec.deletes
    ins = {tid: sorted(map(bytes, d.inserts)) for tid, d in txdata.tables.items() if d.inserts}
    dels = {tid: sorted(map(bytes, d.deletes)) for tid, d in txdata.tables.items() if d.deletes}
    return ins == {t: sorted(r) for t, r in rec.inserts.items()} and dels == {t: sorted(r) for t, r in
                                                                              rec.deletes.items()}


def _call_native(db: Any, module_path: str | Path, rdef: Any, args: bytes, caller: bytes, conn: bytes,
                 ts: Any) -> tuple[str, str | None, Any, BaseException | None]:
    """The reducer call on the module's Python source, natively; the SDK's failure path is observed so the
    exception object (and its traceback, for a debugger) is returned, not only its message."""
    from module_sdk import log as sdk_log

    from .native import load_native

    dispatch, door = load_native(db, module_path)
    caught: list[BaseException] = []
    original = sdk_log.log_exception

    def capture(e: BaseException, context: str = "") -> None:
        caught.append(e)
        original(e, context)

    sdk_log.log_exception = capture  # the module object _dispatch calls through
    tx = db.datastore.begin()
    door.tx, door.now = tx, ts.micros
    try:
        err = dispatch.call_reducer(rdef.id, caller, conn, ts.micros, args)
    except BaseException as e:  # noqa: BLE001 - escaped the SDK: reported, state rolled back
        tx.rollback()
        return "raised", f"{type(e).__name__}: {e}", None, e
    finally:
        door.tx = None
        sdk_log.log_exception = original
    if err is None:
        return "committed", None, tx.commit(), None
    tx.rollback()
    return "failed", err if isinstance(err, str) else str(err), None, caught[-1] if caught else None
