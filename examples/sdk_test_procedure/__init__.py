"""Upstream's `modules/sdk-test-procedure` in Python: the module its Rust SDK suite `procedure-client` runs against.

Procedures with typed return values (a primitive, a struct, an enum), one that fails, transactions inside a
procedure (`with_tx` commits, `try_with_tx` rolls back on `Err`), outbound HTTP (`read_my_schema` fetches this
database's own schema, `invalid_request` reports a request that cannot succeed), a procedure run from a
scheduled table, and UUIDv7s made in one transaction that sort in insertion order.
"""

from module_sdk import (
    Err,
    HttpError,
    ProcedureContext,
    ReducerContext,
    ScheduleAt,
    TimeDuration,
    Timestamp,
    TxContext,
    Uuid,
    primary_key,
    procedure,
    product,
    reducer,
    sum_type,
    table,
    u8,
    u32,
    u64,
)


@product
class ReturnStruct:
    a: u32
    b: str


@sum_type
class ReturnEnum:
    A: u32
    B: str


@procedure
def return_primitive(ctx: ProcedureContext, lhs: u32, rhs: u32) -> u32:
    return lhs + rhs


@procedure
def return_struct(ctx: ProcedureContext, a: u32, b: str) -> ReturnStruct:
    return ReturnStruct(a=a, b=b)


@procedure
def return_enum_a(ctx: ProcedureContext, a: u32) -> ReturnEnum:
    return ReturnEnum.A(a)


@procedure
def return_enum_b(ctx: ProcedureContext, b: str) -> ReturnEnum:
    return ReturnEnum.B(b)


@procedure
def will_panic(ctx: ProcedureContext) -> None:
    raise RuntimeError("This procedure is expected to panic")


@procedure
def read_my_schema(ctx: ProcedureContext, server_url: str) -> str:
    server_url = server_url.rstrip("/")
    resp = ctx.http.get(f"{server_url}/v1/database/{ctx.identity}/schema?version=9")
    return resp.text()


@procedure
def invalid_request(ctx: ProcedureContext) -> str:
    try:
        resp = ctx.http.get("http://foo.invalid/")
    except HttpError as e:
        return str(e)
    raise RuntimeError(f"Got result from requesting `http://foo.invalid`... huh?\n{resp.text()}")


@table(accessor='my_table', public=True)
class MyTable:
    field: ReturnStruct


def insert_my_table(ctx: TxContext) -> None:
    ctx.db.my_table.insert(MyTable(field=ReturnStruct(a=42, b="magic")))


def assert_row_count(ctx: ProcedureContext, count: int) -> None:
    def check(tx: TxContext) -> None:
        assert tx.db.my_table.count() == count, f"expected {count} rows, found {tx.db.my_table.count()}"
    ctx.with_tx(check)


@procedure
def insert_with_tx_commit(ctx: ProcedureContext) -> None:
    ctx.with_tx(insert_my_table)
    assert_row_count(ctx, 1)


@procedure
def insert_with_tx_rollback(ctx: ProcedureContext) -> None:
    def insert_then_fail(tx: TxContext):
        insert_my_table(tx)
        return Err(24)
    ctx.try_with_tx(insert_then_fail)
    assert_row_count(ctx, 0)


@reducer
def schedule_proc(ctx: ReducerContext) -> None:
    """Schedules `scheduled_proc` to run in 1 s, with the time of this call in the row."""
    ctx.db.scheduled_proc_table.insert(ScheduledProcTable(
        scheduled_id=0, scheduled_at=ScheduleAt.interval(TimeDuration.from_millis(1000)),
        reducer_ts=ctx.timestamp, x=42, y=24))


@table(accessor='scheduled_proc_table', scheduled=lambda: scheduled_proc)
class ScheduledProcTable:
    scheduled_id: u64 = primary_key(auto_inc=True)
    scheduled_at: ScheduleAt
    reducer_ts: Timestamp
    x: u8
    y: u8


@procedure
def scheduled_proc(ctx: ProcedureContext, data: ScheduledProcTable) -> None:
    """Runs 1 s after `schedule_proc`; records both timestamps."""
    procedure_ts = ctx.timestamp
    ctx.with_tx(lambda tx: tx.db.proc_inserts_into.insert(ProcInsertsInto(
        reducer_ts=data.reducer_ts, procedure_ts=procedure_ts, x=data.x, y=data.y)))


@table(accessor='proc_inserts_into', public=True)
class ProcInsertsInto:
    reducer_ts: Timestamp
    procedure_ts: Timestamp
    x: u8
    y: u8


@table(accessor='pk_uuid', public=True)
class PkUuid:
    u: Uuid
    data: u8


@procedure
def sorted_uuids_insert(ctx: ProcedureContext) -> None:
    def insert(tx: TxContext) -> None:
        for _ in range(1000):
            tx.db.pk_uuid.insert(PkUuid(u=tx.new_uuid_v7(), data=0))
        last = None
        for row in tx.db.pk_uuid.iter():
            if last is not None and last >= row.u:
                raise RuntimeError("UUIDs are not sorted correctly")
            last = row.u
    ctx.with_tx(insert)
