"""Scheduled reducers: a one-shot reminder and a repeating heartbeat.

Inserting a row into a scheduled table schedules a call of its reducer with that row; `ScheduleAt.time`
fires once (the host then deletes the row), `ScheduleAt.interval` repeats until the row is deleted.
"""

from module_sdk import (
    ReducerContext,
    ScheduleAt,
    TimeDuration,
    Timestamp,
    init,
    log,
    primary_key,
    reducer,
    table,
    u64,
)


@table(public=True)
class Fired:
    id: u64 = primary_key(auto_inc=True)
    what: str
    at: Timestamp


@table(scheduled=lambda: remind)
class Reminder:
    scheduled_id: u64 = primary_key(auto_inc=True)
    scheduled_at: ScheduleAt
    text: str


@table(scheduled=lambda: heartbeat)
class Heartbeat:
    scheduled_id: u64 = primary_key(auto_inc=True)
    scheduled_at: ScheduleAt


@reducer
def remind(ctx: ReducerContext, row: Reminder) -> None:
    log.info(f"reminder: {row.text}")
    ctx.db.fired.insert(Fired(what=row.text, at=ctx.timestamp))


@reducer
def heartbeat(ctx: ReducerContext, row: Heartbeat) -> None:
    ctx.db.fired.insert(Fired(what="beat", at=ctx.timestamp))


@reducer
def remind_me(ctx: ReducerContext, text: str, after_ms: u64) -> None:
    at = ctx.timestamp + TimeDuration.from_millis(after_ms)
    ctx.db.reminder.insert(Reminder(scheduled_at=ScheduleAt.time(at), text=text))


@reducer
def start_heartbeat(ctx: ReducerContext, every_ms: u64) -> None:
    ctx.db.heartbeat.insert(Heartbeat(scheduled_at=ScheduleAt.interval(TimeDuration.from_millis(every_ms))))


@reducer
def stop_heartbeat(ctx: ReducerContext) -> None:
    ctx.db.heartbeat.clear()


@init
def setup(ctx: ReducerContext) -> None:
    log.info("reminders module initialized")
