"""The host side of every spacetime_10.x import (shared/spec/module-abi.md §2–§13).

Each import is `impl(p)`: arguments are read from the raw value slots (`p[4*i]`, unsigned), the result
is written to `p[0]`.  Recoverable datastore conditions come back as errnos; memory faults (NULL,
out of bounds, bad UTF-8) and anything else raise `HostTrap`, which traps the guest so the call rolls
back and the instance is replaced.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.datastore import (
    UNBOUNDED,
    DatastoreError,
    Excluded,
    Included,
    NotInTransaction,
    Tx,
    WrongIndexAlgo,
)
from harness.limits import LIMITS
from spacetime_core.sats import BsatnError, encoder, exact_decoder

from .wasm import HostTrap

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
I64 = struct.Struct("<q")
U32_unpack_from, U32_pack_into = U32.unpack_from, U32.pack_into
CHUNK = 32 * 1024  # ROW_ITER_CHUNK_SIZE: a new chunk starts once the current one exceeds this
EXHAUSTED = 0xFFFFFFFF  # -1 as the u32 the slot holds
ERR_NO_SUCH_ITER, ERR_NO_SUCH_BYTES, ERR_NO_SUCH_TIMER, ERR_BUFFER_TOO_SMALL = 6, 8, 7, 11
ERR_BSATN = 3
ERR_WOULD_BLOCK, ERR_NOT_ANONYMOUS = 17, 18
ERR_HTTP = 21


class ProcedureHost:
    """What the procedure-only imports need from the database (module-abi.md §4.4); the Database supplies it.

    start_tx() -> (Tx, timestamp µs); commit_tx(tx); abort_tx(tx); sleep_until(µs) -> now µs;
    http(request_bsatn, body) -> (response_bsatn, body), raising HttpFailure(message) when no response came.
    """

    def start_tx(self) -> tuple[Tx, int]:
        raise NotImplementedError

    def commit_tx(self, tx: Tx) -> None:
        raise NotImplementedError

    def abort_tx(self, tx: Tx) -> None:
        raise NotImplementedError

    def sleep_until(self, micros: int) -> int:
        raise NotImplementedError

    def http(self, request: bytes, body: bytes) -> tuple[bytes, bytes]:
        raise NotImplementedError


class HttpFailure(Exception):
    """No HTTP response at all (refused by policy, DNS, connect, timeout): errno 21 with this message."""


@dataclass
class IndexRuntime:
    """What the ABI needs to turn BSATN keys, prefixes and bounds into datastore calls."""

    index_id: int
    columns: tuple[int, ...]
    col_decoders: tuple[Callable, ...]  # decoder(buf, off) -> (value, off) per index column


@dataclass
class TableRuntime:
    """Per-table codecs the ABI needs beyond the datastore: splitting row arrays, encoding write-backs."""

    table_id: int
    row_decoder: Callable  # decoder(buf, off) -> (row, off)
    col_encoders: tuple[Callable, ...]  # encoder(value) -> bytes per column

    def split_rows(self, data: bytes) -> list[bytes]:
        """The rows of a BSATN array of rows (u32 count + rows), as separate byte strings."""
        try:
            (count,) = U32.unpack_from(data, 0)
            rows, off = [], 4
            for _ in range(count):
                _, end = self.row_decoder(data, off)
                rows.append(data[off:end])
                off = end
        except (BsatnError, IndexError, ValueError, struct.error) as e:
            raise _Bsatn(f"row array does not decode: {e}") from None
        if off != len(data):
            raise _Bsatn("row array has trailing bytes")
        return rows

    def generated_bsatn(self, generated) -> bytes:
        return b"".join(self.col_encoders[c](v) for c, v in generated) if generated else b""


@dataclass
class LogRecord:
    level: int
    target: str | None
    filename: str | None
    line: int | None
    message: str
    ts_us: int
    function: str | None = None

    LEVELS = {0: "error", 1: "warn", 2: "info", 3: "debug", 4: "trace", 101: "panic"}

    @property
    def timestamp(self) -> int:
        """µs since the Unix epoch (alias of ts_us)."""
        return self.ts_us

    @property
    def level_name(self) -> str:
        return self.LEVELS.get(self.level & 0xFF, "debug")


class AbiEnv:
    """Per-instance host state: the open transaction, bytes sources/sinks, row iterators, timers."""

    def __init__(
        self,
        *,
        tables: dict[int, TableRuntime],
        indexes: dict[int, IndexRuntime],
        table_names: dict[str, int],
        index_names: dict[str, int],
        database_identity: bytes,
        on_log: Callable[[LogRecord], None],
        schedule_immediate: Callable[[str, bytes], None] | None = None,
        jwt_for: Callable[[bytes], bytes | None] | None = None,
        procedure_host: ProcedureHost | None = None,
    ):
        self.inst = None  # set by the owner once the wasm instance exists
        self.mv = memoryview(b"")
        self.tables = tables
        self.indexes = indexes
        self.table_names = table_names
        self.index_names = index_names
        self.database_identity = database_identity
        self.on_log = on_log
        self.schedule_immediate = schedule_immediate
        self.jwt_for = jwt_for
        self.procedure_host = procedure_host
        self.tx: Tx | None = None
        self.read_only = False  # a view: reads only, writes trap
        self.in_procedure = False  # a procedure call: no tx until procedure_start_mut_tx
        self.function: str | None = None
        self.sources: dict[int, list] = {}
        self.sinks: dict[int, bytearray] = {}
        self.next_source = 1
        self.next_sink = 1
        self.iters: dict[int, list[bytes]] = {}
        self.next_iter = 1
        self.timers: dict[int, tuple[str, float]] = {}
        self.next_timer = 1

    # ------------------------------------------------------------ per-call state

    def begin_call(self, function: str | None, tx: Tx | None, *, read_only: bool = False,
                   procedure: bool = False) -> None:
        self.function = function
        self.tx = tx
        self.read_only = read_only
        self.in_procedure = procedure
        self.sources.clear()
        self.sinks.clear()
        self.next_source = self.next_sink = 1

    def end_call(self) -> None:
        self.tx = None
        self.function = None
        self.read_only = self.in_procedure = False
        self.sources.clear()
        self.sinks.clear()
        self.iters.clear()  # an iterator over a finished transaction is useless; leaked ones must not pile up
        self.timers.clear()
        self.next_source = self.next_sink = 1

    def new_sink(self) -> int:
        sid = self.next_sink
        self.next_sink += 1
        self.sinks[sid] = bytearray()
        return sid

    def new_source(self, data: bytes) -> int:
        """Source ids start at 1; empty input is the permanent empty source 0."""
        if not data:
            return 0
        sid = self.next_source
        self.next_source += 1
        self.sources[sid] = [data, 0]
        return sid

    # ------------------------------------------------------------ memory

    def view(self, ptr: int, n: int) -> memoryview:
        if ptr == 0:
            raise HostTrap("NULL pointer passed to a host import")
        end = ptr + n
        mv = self.mv
        if end > len(mv):
            mv = self.mv = self.inst.refresh_memory()
            if end > len(mv):
                raise HostTrap(f"pointer range {ptr}..{end} is outside linear memory ({len(mv)} bytes)")
        return mv[ptr:end]

    def read(self, ptr: int, n: int) -> bytes:
        return bytes(self.view(ptr, n))

    def text(self, ptr: int, n: int) -> str:
        try:
            return self.read(ptr, n).decode("utf-8")
        except UnicodeDecodeError:
            raise HostTrap("a name passed to the host is not valid UTF-8") from None

    def _mem(self, ptr: int, n: int) -> memoryview:
        """The whole linear memory view, after the same checks as `view` (no slice: scalar reads and writes
        go straight through struct at `ptr`)."""
        mv = self.mv
        if ptr == 0 or ptr + n > len(mv):
            self.view(ptr, n)  # raises, or refreshes self.mv after memory.grow
            mv = self.mv
        return mv

    def get_u32(self, ptr: int) -> int:
        return U32_unpack_from(self._mem(ptr, 4), ptr)[0]

    def put_u32(self, ptr: int, v: int) -> None:
        U32_pack_into(self._mem(ptr, 4), ptr, v)

    def put_u64(self, ptr: int, v: int) -> None:
        U64.pack_into(self.view(ptr, 8), 0, v)

    def need_tx(self) -> Tx:
        if self.tx is None:
            raise NotInTransaction("no transaction is open")
        return self.tx

    def need_write_tx(self) -> Tx:
        tx = self.need_tx()
        if self.read_only:
            raise HostTrap("views run in a read-only transaction: writes are not allowed")
        return tx

    # ------------------------------------------------------------ the import table

    def imports(self) -> dict[tuple[str, str], Callable]:
        def errno(fn):
            """Datastore errors with an errno become the return value; the rest trap."""

            def impl(p):
                try:
                    p[0] = fn(p)
                except DatastoreError as e:
                    if e.errno is None or isinstance(e, WrongIndexAlgo):  # upstream traps on range-on-hash
                        raise HostTrap(str(e)) from e
                    p[0] = e.errno

            return impl

        v0, v1, v2, v3, v4, v5 = (f"spacetime_10.{i}" for i in range(6))
        table = {
            (v0, "table_id_from_name"): errno(self._table_id_from_name),
            (v0, "index_id_from_name"): errno(self._index_id_from_name),
            (v0, "datastore_table_row_count"): errno(self._row_count),
            (v0, "datastore_table_scan_bsatn"): errno(self._table_scan),
            (v0, "datastore_index_scan_range_bsatn"): errno(self._index_scan_range),
            (v0, "datastore_btree_scan_bsatn"): errno(self._index_scan_range),
            (v0, "datastore_delete_by_index_scan_range_bsatn"): errno(self._delete_by_range),
            (v0, "datastore_delete_by_btree_scan_bsatn"): errno(self._delete_by_range),
            (v0, "datastore_delete_all_by_eq_bsatn"): errno(self._delete_all_by_eq),
            (v0, "row_iter_bsatn_advance"): errno(self._iter_advance),
            (v0, "row_iter_bsatn_close"): errno(self._iter_close),
            (v0, "datastore_insert_bsatn"): errno(self._insert),
            (v0, "datastore_update_bsatn"): errno(self._update),
            (v0, "bytes_sink_write"): errno(self._sink_write),
            (v0, "bytes_source_read"): errno(self._source_read),
            (v0, "console_log"): self._console_log,
            (v0, "console_timer_start"): self._timer_start,
            (v0, "console_timer_end"): errno(self._timer_end),
            (v0, "identity"): self._identity,
            (v0, "volatile_nonatomic_schedule_immediate"): self._schedule_immediate,
            (v1, "bytes_source_remaining_length"): errno(self._source_remaining),
            (v2, "get_jwt"): errno(self._get_jwt),
            (v3, "procedure_sleep_until"): self._sleep_until,
            (v3, "procedure_start_mut_tx"): errno(self._start_mut_tx),
            (v3, "procedure_commit_mut_tx"): errno(self._commit_mut_tx),
            (v3, "procedure_abort_mut_tx"): errno(self._abort_mut_tx),
            (v3, "procedure_http_request"): errno(self._http_request),
            (v4, "datastore_index_scan_point_bsatn"): errno(self._index_scan_point),
            (v4, "datastore_delete_by_index_scan_point_bsatn"): errno(self._delete_by_point),
            (v5, "datastore_clear"): errno(self._clear),
        }
        return table

    # ------------------------------------------------------------ names

    def _table_id_from_name(self, p) -> int:
        name = self.text(p[0], p[4])
        self.need_tx()
        tid = self.table_names.get(name)
        if tid is None:
            return 4  # NO_SUCH_TABLE
        self.put_u32(p[8], tid)
        return 0

    def _index_id_from_name(self, p) -> int:
        name = self.text(p[0], p[4])
        self.need_tx()
        iid = self.index_names.get(name)
        if iid is None:
            return 5  # NO_SUCH_INDEX
        self.put_u32(p[8], iid)
        return 0

    # ------------------------------------------------------------ reads

    def _row_count(self, p) -> int:
        n = self.need_tx().row_count(p[0])
        self.put_u64(p[4], n)
        return 0

    def _open_iter(self, rows: list[bytes], out_ptr: int) -> int:
        if len(rows) <= 1:  # a point lookup's usual answer: zero or one row is zero or one chunk
            chunks = list(rows)
        else:
            chunks = []
            cur: list[bytes] = []
            size = 0
            for row in rows:
                cur.append(row)
                size += len(row)
                if size > CHUNK:
                    chunks.append(b"".join(cur))
                    cur, size = [], 0
            if cur:
                chunks.append(b"".join(cur))
            chunks.reverse()  # pop() from the end
        if len(self.iters) >= LIMITS.open_iterators:
            raise HostTrap(f"the module keeps more than {LIMITS.open_iterators} row iterators open "
                           "(limit open_iterators)")
        iid = self.next_iter
        self.next_iter += 1
        self.iters[iid] = chunks
        self.put_u32(out_ptr, iid)
        return 0

    def _table_scan(self, p) -> int:
        return self._open_iter(self.need_tx().scan_bsatn(p[0]), p[4])

    def _index(self, index_id: int) -> IndexRuntime:
        ix = self.indexes.get(index_id)
        if ix is None:
            from harness.datastore import NoSuchIndex

            raise NoSuchIndex(f"no index with id {index_id}")
        return ix

    def _decode_key(self, ix: IndexRuntime, data: bytes, ncols: int) -> tuple:
        try:
            if ncols == 1:  # the common single-column key
                v, off = ix.col_decoders[0](data, 0)
                values = (v,)
            else:
                values = []
                off = 0
                for dec in ix.col_decoders[:ncols]:
                    v, off = dec(data, off)
                    values.append(v)
        except (BsatnError, IndexError, ValueError, struct.error) as e:
            raise _Bsatn(f"index key does not decode: {e}") from None
        if off != len(data):
            raise _Bsatn("index key has trailing bytes")
        return tuple(values)

    def _range_args(self, p):
        ix = self._index(p[0])
        elems = p[12]
        if elems > 0xFFFF:
            raise HostTrap("prefix_elems does not fit in u16")
        if elems >= len(ix.columns):
            raise _Bsatn(f"prefix of {elems} columns leaves no column to range over")
        prefix = self._decode_key(ix, self.read(p[4], p[8]) if elems else b"", elems) if elems else ()
        if not elems and p[8]:
            raise _Bsatn("non-empty prefix with prefix_elems = 0")
        col_dec = ix.col_decoders[elems]
        start = self._bound(self.read(p[16], p[20]), col_dec)
        end = self._bound(self.read(p[24], p[28]), col_dec)
        return ix, prefix, start, end

    @staticmethod
    def _bound(data: bytes, dec):
        if not data:
            raise _Bsatn("empty Bound")
        tag = data[0]
        if tag == 2:
            if len(data) != 1:
                raise _Bsatn("Unbounded has trailing bytes")
            return UNBOUNDED
        if tag > 2:
            raise _Bsatn(f"invalid Bound tag {tag}")
        try:
            v, off = dec(data, 1)
        except (BsatnError, IndexError, ValueError, struct.error) as e:
            raise _Bsatn(f"bound value does not decode: {e}") from None
        if off != len(data):
            raise _Bsatn("bound has trailing bytes")
        return Included(v) if tag == 0 else Excluded(v)

    def _index_scan_range(self, p) -> int:
        tx = self.need_tx()
        ix, prefix, start, end = self._range_args(p)
        return self._open_iter(tx.index_range_bsatn(ix.index_id, prefix, start, end), p[32])

    def _index_scan_point(self, p) -> int:
        tx = self.tx
        if tx is None:
            raise NotInTransaction("no transaction is open")
        ix = self.indexes.get(p[0])
        if ix is None:
            ix = self._index(p[0])  # raises NoSuchIndex
        ptr, n = p[4], p[8]
        mv = self.mv
        if ptr == 0 or ptr + n > len(mv):
            mv = self._mem(ptr, n)
        key = self._decode_key(ix, mv[ptr:ptr + n].tobytes(), len(ix.columns))
        return self._open_iter(tx.index_point_bsatn(ix.index_id, key), p[12])

    def _iter_advance(self, p) -> int:
        chunks = self.iters.get(p[0])
        if chunks is None:
            return ERR_NO_SUCH_ITER
        buf, len_ptr = p[4], p[8]
        cap = self.get_u32(len_ptr)
        if len(chunks) == 1 and len(chunks[0]) <= cap:  # the last (often only) chunk fits: copy it and finish
            c = chunks[0]
            mv = self._mem(buf, len(c))
            mv[buf:buf + len(c)] = c
            U32_pack_into(mv, len_ptr, len(c))  # len_ptr was checked by get_u32
            del self.iters[p[0]]
            return EXHAUSTED
        written = 0
        while chunks and written + len(chunks[-1]) <= cap:
            c = chunks.pop()
            self.view(buf + written, len(c))[:] = c if c else b""
            written += len(c)
        if chunks and written == 0:
            self.put_u32(len_ptr, len(chunks[-1]))
            return ERR_BUFFER_TOO_SMALL
        self.put_u32(len_ptr, written)
        if not chunks:
            del self.iters[p[0]]
            return EXHAUSTED
        return 0

    def _iter_close(self, p) -> int:
        return 0 if self.iters.pop(p[0], None) is not None else ERR_NO_SUCH_ITER

    # ------------------------------------------------------------ writes

    def _write_back(self, table_id: int, res, ptr: int, len_ptr: int) -> int:
        if not res.generated:  # nothing generated (ptr was checked when the row was read)
            self.put_u32(len_ptr, 0)
            return 0
        gen = self.tables[table_id].generated_bsatn(res.generated)
        self.view(ptr, len(gen))[:] = gen if gen else b""
        self.put_u32(len_ptr, len(gen))
        return 0

    def _insert(self, p) -> int:
        tx = self.need_write_tx()
        ptr, len_ptr = p[4], p[8]
        row = self.read(ptr, self.get_u32(len_ptr))
        return self._write_back(p[0], tx.insert(p[0], row), ptr, len_ptr)

    def _update(self, p) -> int:
        tx = self.need_write_tx()
        ptr, len_ptr = p[8], p[12]
        n = self.get_u32(len_ptr)
        mv = self._mem(ptr, n)
        res = tx.update(p[0], p[4], mv[ptr:ptr + n].tobytes())
        if not res.generated:  # nothing to write back (see _write_back)
            U32_pack_into(mv, len_ptr, 0)
            return 0
        return self._write_back(p[0], res, ptr, len_ptr)

    def _delete_by_range(self, p) -> int:
        tx = self.need_write_tx()
        ix, prefix, start, end = self._range_args(p)
        self.put_u32(p[32], tx.delete_by_range(ix.index_id, prefix, start, end))
        return 0

    def _delete_by_point(self, p) -> int:
        tx = self.need_write_tx()
        ix = self._index(p[0])
        key = self._decode_key(ix, self.read(p[4], p[8]), len(ix.columns))
        self.put_u32(p[12], tx.delete_by_point(ix.index_id, key))
        return 0

    def _delete_all_by_eq(self, p) -> int:
        tx = self.need_write_tx()
        data = self.read(p[4], p[8])
        table = self.tables.get(p[0])
        if table is None:
            return 4  # NO_SUCH_TABLE
        rows = table.split_rows(data)
        self.put_u32(p[12], tx.delete_all_by_eq(p[0], rows))
        return 0

    def _clear(self, p) -> int:
        self.put_u64(p[4], self.need_write_tx().clear(p[0]))
        return 0

    # ------------------------------------------------------------ bytes

    def _sink_write(self, p) -> int:
        sink = self.sinks.get(p[0])
        if sink is None:
            return ERR_NO_SUCH_BYTES
        n = self.get_u32(p[8])
        if len(sink) + n > LIMITS.sink_bytes:  # a module writing without end must not exhaust the host
            raise HostTrap(f"the module wrote more than {LIMITS.sink_bytes} bytes to one output sink "
                           "(limit sink_bytes)")
        sink += self.view(p[4], n)
        return 0

    def _source_read(self, p) -> int:
        src = self.sources.get(p[0])
        if src is None:
            return ERR_NO_SUCH_BYTES
        data, pos = src
        buf, len_ptr = p[4], p[8]
        cap = self.get_u32(len_ptr)
        n = min(cap, len(data) - pos)
        mv = self._mem(buf, n)  # also the NULL check when n == 0
        if n:
            mv[buf:buf + n] = data[pos:pos + n] if pos or n != len(data) else data
        U32_pack_into(mv, len_ptr, n)  # len_ptr was checked by get_u32
        src[1] = pos + n
        if src[1] >= len(data):
            del self.sources[p[0]]
            return EXHAUSTED
        return 0

    def _source_remaining(self, p) -> int:
        src = self.sources.get(p[0])
        if src is None:
            return ERR_NO_SUCH_BYTES
        self.put_u32(p[4], len(src[0]) - src[1])
        return 0

    # ------------------------------------------------------------ misc

    def _console_log(self, p) -> None:
        try:
            mv = self.mv if len(self.mv) else self.inst.refresh_memory()

            def s(ptr, n, cap=1024):
                if not ptr:
                    return None
                text = bytes(self.view(ptr, min(n, cap))).decode("utf-8", "replace")
                return text if n <= cap else f"{text}... [{n - cap} more bytes cut: limit log_line_bytes]"

            rec = LogRecord(p[0] & 0xFF if p[0] & 0xFF in (0, 1, 2, 3, 4, 101) else 3, s(p[4], p[8]),
                            s(p[12], p[16]), None if p[20] == 0xFFFFFFFF else p[20],
                            s(p[24], p[28], LIMITS.log_line_bytes) or "",
                            int(time.time() * 1e6), self.function)
            del mv
        except HostTrap:
            return  # bad pointers silently drop the record (upstream)
        self.on_log(rec)

    def _timer_start(self, p) -> None:
        name = bytes(self.view(p[0], min(p[4], 1024))).decode("utf-8", "replace")
        if len(self.timers) >= LIMITS.open_timers:
            raise HostTrap(f"the module keeps more than {LIMITS.open_timers} console timers open (limit open_timers)")
        tid = self.next_timer
        self.next_timer += 1
        self.timers[tid] = (name, time.perf_counter())
        p[0] = tid

    def _timer_end(self, p) -> int:
        t = self.timers.pop(p[0], None)
        if t is None:
            return ERR_NO_SUCH_TIMER
        name, t0 = t
        self.on_log(LogRecord(2, None, None, None, f'Timing span "{name}": {(time.perf_counter() - t0) * 1e3:.3f}ms',
                              int(time.time() * 1e6), self.function))
        return 0

    def _identity(self, p) -> None:
        self.view(p[0], 32)[:] = self.database_identity

    def _schedule_immediate(self, p) -> None:
        name = self.text(p[0], p[4])
        args = self.read(p[8], p[12]) if p[12] else b""
        if self.schedule_immediate:
            self.schedule_immediate(name, args)

    def _get_jwt(self, p) -> int:
        self.need_tx()
        conn = self.read(p[0], 16)
        payload = self.jwt_for(conn) if self.jwt_for else None
        self.put_u32(p[4], self.new_source(payload) if payload else 0)
        return 0

    # ------------------------------------------------------------ procedures (module-abi.md §4.4, §5.3)

    def _procedure_only(self, what: str) -> ProcedureHost:
        if not self.in_procedure or self.procedure_host is None:
            raise HostTrap(f"{what} is only available to procedures")
        return self.procedure_host

    def _start_mut_tx(self, p) -> int:
        if not self.in_procedure or self.procedure_host is None or self.tx is not None:
            return ERR_WOULD_BLOCK  # a reducer (or a procedure that already started one) has a tx open
        self.view(p[0], 8)  # check the out pointer before starting anything
        tx, ts = self.procedure_host.start_tx()
        self.tx = tx
        I64.pack_into(self.view(p[0], 8), 0, ts)
        self._fresh_deadline()
        return 0

    def _end_mut_tx(self, commit: bool) -> int:
        if not self.in_procedure or self.procedure_host is None or self.tx is None:
            return ERR_NOT_ANONYMOUS
        tx, self.tx = self.tx, None
        if commit:
            self.procedure_host.commit_tx(tx)
        else:
            self.procedure_host.abort_tx(tx)
        return 0

    def _commit_mut_tx(self, p) -> int:
        return self._end_mut_tx(True)

    def _abort_mut_tx(self, p) -> int:
        return self._end_mut_tx(False)

    def _sleep_until(self, p) -> None:
        host = self._procedure_only("procedure_sleep_until")
        if self.tx is not None:
            raise HostTrap("procedure_sleep_until called while a transaction is open")
        wake = I64.unpack(U64.pack(p[0] | (p[1] << 32)))[0]
        now = host.sleep_until(wake)
        p[0], p[1] = now & 0xFFFFFFFF, (now >> 32) & 0xFFFFFFFF
        self._fresh_deadline()

    def _http_request(self, p) -> int:
        host = self._procedure_only("procedure_http_request")
        request = self.read(p[0], p[4])
        body = bytes(self.view(p[8], p[12]))  # body_ptr must be non-NULL even when empty
        out = p[16]
        self.view(out, 8)
        if self.tx is not None:
            return ERR_WOULD_BLOCK
        try:
            head, data = host.http(request, body)
        except HttpFailure as e:
            msg = str(e).encode("utf-8")
            self.put_u32(out, self.new_source(U32.pack(len(msg)) + msg))
            self._fresh_deadline()
            return ERR_HTTP
        self.put_u32(out, self.new_source(head))
        self.put_u32(out + 4, self.new_source(data))
        self._fresh_deadline()
        return 0

    def _fresh_deadline(self) -> None:
        """Time spent blocked in the host (sleep, HTTP, waiting for the write lock) does not count
        against the call's wall-clock limit."""
        if self.inst is not None:
            self.inst.restart_clock()


class _Bsatn(DatastoreError):
    errno = ERR_BSATN


def row_codec(row_type, typespace):
    """(decode(bytes) -> tuple, encode(tuple) -> bytes) for a table's row product type."""
    return exact_decoder(row_type, typespace), encoder(row_type, typespace)
