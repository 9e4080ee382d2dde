"""Upstream's `modules/sdk-test-procedure-concurrency` in Python: the module its Rust SDK suite
`procedure-concurrency-client` runs against.

A procedure that waits between two transactions lets reducers (called by any client, or scheduled) commit in
between; `insertion_order` (auto-increment) records the order.  A scheduled procedure that sleeps holds the
scheduler, so a reducer scheduled while it sleeps runs after it.
"""

from module_sdk import (
    ProcedureContext,
    ReducerContext,
    ScheduleAt,
    TimeDuration,
    TxContext,
    auto_inc,
    log,
    primary_key,
    procedure,
    reducer,
    table,
    u32,
    u64,
)


@table(accessor='procedure_concurrency_row', public=True)
class ProcedureConcurrencyRow:
    insertion_order: u32 = auto_inc()
    insertion_context: str


def insert_procedure_concurrency_row(ctx: TxContext, insertion_context: str) -> None:
    ctx.db.procedure_concurrency_row.insert(ProcedureConcurrencyRow(insertion_order=0,
                                                                    insertion_context=insertion_context))


@reducer
def insert_reducer_row(ctx: ReducerContext) -> None:
    insert_procedure_concurrency_row(ctx, "reducer")


POLL_TIMEOUT = TimeDuration.from_seconds(10)
POLL_INTERVAL = TimeDuration.from_millis(100)


def poll_until_tx_true(ctx: ProcedureContext, pred, timeout: TimeDuration = POLL_TIMEOUT,
                       poll_interval: TimeDuration = POLL_INTERVAL) -> None:
    """Sleep in `poll_interval` steps until `pred(tx)` holds in a transaction; fail after `timeout`."""
    deadline = ctx.timestamp + timeout
    log.info(f"poll_until_tx_true: will give up at {deadline}")
    while ctx.timestamp < deadline:
        try_again = ctx.timestamp + poll_interval
        log.info(f"poll_until_tx_true: sleeping until {try_again}")
        ctx.sleep_until(try_again)
        if ctx.with_tx(pred):
            log.info("poll_until_tx_true: succeeded, returning now")
            return
        log.info("poll_until_tx_true: false")
    raise RuntimeError(f"poll_until_tx_true: exceeded timeout {timeout}")


def someone_else_inserted(tx: TxContext) -> bool:
    return any(row.insertion_context != "procedure_before" for row in tx.db.procedure_concurrency_row.iter())


@procedure
def procedure_sleep_between_inserts(ctx: ProcedureContext) -> None:
    ctx.with_tx(lambda tx: insert_procedure_concurrency_row(tx, "procedure_before"))
    poll_until_tx_true(ctx, someone_else_inserted)
    ctx.with_tx(lambda tx: insert_procedure_concurrency_row(tx, "procedure_after"))


@table(accessor='scheduled_reducer_row', scheduled=lambda: insert_scheduled_reducer)
class ScheduledReducerRow:
    scheduled_id: u64 = primary_key(auto_inc=True)
    scheduled_at: ScheduleAt


@reducer
def insert_scheduled_reducer(ctx: ReducerContext, _schedule: ScheduledReducerRow) -> None:
    insert_procedure_concurrency_row(ctx, "scheduled_reducer")


@procedure
def procedure_schedule_reducer_between_inserts(ctx: ProcedureContext) -> None:
    def before(tx: TxContext) -> None:
        insert_procedure_concurrency_row(tx, "procedure_before")
        tx.db.scheduled_reducer_row.insert(ScheduledReducerRow(scheduled_id=0,
                                                               scheduled_at=ScheduleAt.time(tx.timestamp)))
    ctx.with_tx(before)
    poll_until_tx_true(ctx, someone_else_inserted)
    ctx.with_tx(lambda tx: insert_procedure_concurrency_row(tx, "procedure_after"))


@table(accessor='scheduled_procedure_row', scheduled=lambda: scheduled_procedure_sleep_between_inserts)
class ScheduledProcedureRow:
    scheduled_id: u64 = primary_key(auto_inc=True)
    scheduled_at: ScheduleAt


@procedure
def scheduled_procedure_sleep_between_inserts(ctx: ProcedureContext, _schedule: ScheduledProcedureRow) -> None:
    ctx.with_tx(lambda tx: insert_procedure_concurrency_row(tx, "scheduled_procedure_before"))
    # as upstream: the scheduled reducer cannot run while this procedure holds the scheduler, so just sleep
    ctx.sleep_until(ctx.timestamp + TimeDuration.from_seconds(10))
    ctx.with_tx(lambda tx: insert_procedure_concurrency_row(tx, "scheduled_procedure_after"))


@reducer
def schedule_procedure_then_reducer(ctx: ReducerContext) -> None:
    ctx.db.scheduled_procedure_row.insert(ScheduledProcedureRow(scheduled_id=0,
                                                                scheduled_at=ScheduleAt.time(ctx.timestamp)))
    ctx.db.scheduled_reducer_row.insert(ScheduledReducerRow(
        scheduled_id=0, scheduled_at=ScheduleAt.time(ctx.timestamp + TimeDuration.from_seconds(2))))
