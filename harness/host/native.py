"""Run a module's Python source natively (no wasm) against a Database's datastore.

`NativeDoor` implements the `_spacetime` raw door (module_sdk/_spacetime.pyi) in Python over the same
datastore the wasm imports use.  Benchmarks use it as the baseline "same reducer, no wasm"; it also lets
a module author step through reducers with a debugger.  The module must already be loaded in the
Database (tables created from its wasm), so both paths see identical schemas.
"""

from __future__ import annotations

import importlib
import struct
import sys
import time
from pathlib import Path

from harness.datastore import DatastoreError, NoSuchIndex, NoSuchTable, NotInTransaction, Tx

from .abi import AbiEnv, LogRecord

U32 = struct.Struct("<I")


class HostError(Exception):
    pass


class NativeDoor:
    """The `_spacetime` module API, served from Python objects instead of wasm imports."""

    HostError = HostError

    def __init__(self, database):
        self.db = database
        self.tx: Tx | None = None
        self.now = 0
        self._iters: dict[int, bytes] = {}
        self._next_iter = 1
        env: AbiEnv = database.env
        self._tables, self._indexes = env.tables, env.indexes
        self._table_names, self._index_names = env.table_names, env.index_names
        self._bound = env._bound
        self._decode_key = env._decode_key

    def _tx(self) -> Tx:
        if self.tx is None:
            raise HostError(NotInTransaction.errno)
        return self.tx

    def _errno(self, fn, *args):
        try:
            return fn(*args)
        except DatastoreError as e:
            raise HostError(e.errno) from None

    def table_id_from_name(self, name):
        self._tx()
        if name not in self._table_names:
            raise HostError(NoSuchTable.errno)
        return self._table_names[name]

    def index_id_from_name(self, name):
        self._tx()
        if name not in self._index_names:
            raise HostError(NoSuchIndex.errno)
        return self._index_names[name]

    def _iter(self, rows):
        it = self._next_iter
        self._next_iter += 1
        self._iters[it] = b"".join(rows)
        return it

    def datastore_table_row_count(self, tid):
        return self._errno(self._tx().row_count, tid)

    def datastore_table_scan_bsatn(self, tid):
        return self._iter(self._errno(self._tx().scan_bsatn, tid))

    def _range(self, iid, prefix, elems, rstart, rend):
        ix = self._indexes[iid]
        pre = self._decode_key(ix, bytes(prefix), elems) if elems else ()
        dec = ix.col_decoders[elems]
        return ix, pre, self._bound(bytes(rstart), dec), self._bound(bytes(rend), dec)

    def datastore_index_scan_range_bsatn(self, iid, prefix, elems, rstart, rend):
        ix, pre, s, e = self._range(iid, prefix, elems, rstart, rend)
        return self._iter(self._errno(self._tx().index_range_bsatn, iid, pre, s, e))

    def datastore_delete_by_index_scan_range_bsatn(self, iid, prefix, elems, rstart, rend):
        ix, pre, s, e = self._range(iid, prefix, elems, rstart, rend)
        return self._errno(self._tx().delete_by_range, iid, pre, s, e)

    def datastore_index_scan_point_bsatn(self, iid, point):
        ix = self._indexes[iid]
        key = self._decode_key(ix, bytes(point), len(ix.columns))
        return self._iter(self._errno(self._tx().index_point_bsatn, iid, key))

    def datastore_delete_by_index_scan_point_bsatn(self, iid, point):
        ix = self._indexes[iid]
        key = self._decode_key(ix, bytes(point), len(ix.columns))
        return self._errno(self._tx().delete_by_point, iid, key)

    def datastore_delete_all_by_eq_bsatn(self, tid, rows):
        return self._errno(self._tx().delete_all_by_eq, tid, self._tables[tid].split_rows(bytes(rows)))

    def row_iter_read_all(self, it):
        return self._iters.pop(it)

    def row_iter_bsatn_close(self, it):
        if self._iters.pop(it, None) is None:
            raise HostError(6)

    def datastore_insert_bsatn(self, tid, row):
        res = self._errno(self._tx().insert, tid, bytes(row))
        return self._tables[tid].generated_bsatn(res.generated)

    def datastore_update_bsatn(self, tid, iid, row):
        res = self._errno(self._tx().update, tid, iid, bytes(row))
        return self._tables[tid].generated_bsatn(res.generated)

    def datastore_clear(self, tid):
        return self._errno(self._tx().clear, tid)

    def console_log(self, level, target, filename, line, message):
        self.db._emit_log(LogRecord(level, target, filename, line, message, int(time.time() * 1e6), "native"))

    def identity(self):
        return self.db.identity.to_bytes()

    def now_micros(self):
        return self.now

    def __getattr__(self, name):  # imports a reducer benchmark never makes (timers, jwt, procedures, ...)
        def unsupported(*args):
            raise HostError(f"{name} is not available when running natively")

        return unsupported

    def bytes_source_read_all(self, source):  # sources never reach native code: args arrive as bytes
        raise HostError(8)


def load_native(database, module_path: str | Path, door: NativeDoor | None = None):
    """Import module_sdk and the module at `module_path` natively with `door` as `_spacetime`; returns
    `(dispatch, door)` where dispatch is module_sdk._dispatch."""
    from module_sdk import _abi, schema
    from module_sdk.build import ModuleProject

    door = door or NativeDoor(database)
    _abi.install(door)
    project = ModuleProject.locate(module_path)
    if str(project.root) not in sys.path:
        sys.path.insert(0, str(project.root))
    # a fresh registry and a fresh import: this process may have loaded another module (or this one) before
    schema.new_module()
    for name in [n for n in sys.modules if n == project.main or n.startswith(project.main + ".")]:
        del sys.modules[name]
    importlib.import_module(project.main)
    dispatch = importlib.import_module("module_sdk._dispatch")
    dispatch.load(schema.current().finalize())
    return dispatch, door


def call_native(database, dispatch, door: NativeDoor, reducer: str, args: bytes, sender: bytes) -> str | None:
    """One reducer call natively, in its own transaction (committed unless the reducer failed)."""
    rid = database.mdef.reducer(reducer).id
    tx = database.datastore.begin()
    door.tx = tx
    door.now = int(time.time() * 1e6)
    try:
        err = dispatch.call_reducer(rid, sender, bytes(16), door.now, args)
    except BaseException:
        tx.rollback()
        raise
    finally:
        door.tx = None
    if err is None:
        tx.commit()
    else:
        tx.rollback()
    return err
