"""Scheduling reducers (module-abi.md section 12).

Scheduled tables: declare a table with `scheduled=<reducer>`, a `u64` auto-inc primary key and a
`ScheduleAt` column; every inserted row schedules one call of the reducer with the row as its argument:

    @table(scheduled=lambda: send_reminder)
    class Reminder:
        scheduled_id: u64 = primary_key(auto_inc=True)
        scheduled_at: ScheduleAt
        text: str

    @reducer
    def send_reminder(ctx: ReducerContext, row: Reminder): ...

    ctx.db.reminder.insert(Reminder(scheduled_at=ScheduleAt.interval(TimeDuration.from_seconds(60)), text="hi"))
    ctx.db.reminder.insert(Reminder(scheduled_at=ScheduleAt.time(ctx.timestamp + TimeDuration.from_millis(500)),
                                    text="once"))

`ScheduleAt.time(...)` runs once (the row is then deleted), `ScheduleAt.interval(...)` repeats until the row is
deleted.  Scheduled calls come from the database itself: `ctx.sender == ctx.identity`.
"""

from spacetime_core.sats.values import ScheduleAt, TimeDuration, Timestamp

from . import _abi
from .schema import function_def


def schedule_immediate(function, *args):
    """Queue a call of `function` (a @reducer) with `args`, to run after the current call, outside its
    transaction and not rolled back if it fails (upstream's volatile_nonatomic_schedule_immediate: unstable,
    best effort)."""
    fdef = function_def(function)
    if fdef is None or fdef.kind != 'reducer':
        raise TypeError(f'schedule_immediate needs a @reducer function, got {function!r}')
    _abi.schedule_immediate(fdef.canonical or fdef.name, fdef.encode_args(args))


def interval(seconds=0, *, millis=0, micros=0):
    """`ScheduleAt.interval(...)` from seconds/millis/micros: repeat at that period."""
    return ScheduleAt.interval(TimeDuration(round(seconds * 1_000_000) + millis * 1000 + micros))


def at(when):
    """`ScheduleAt.time(when)`: run once at a Timestamp (or µs since the epoch)."""
    return ScheduleAt.time(when if isinstance(when, Timestamp) else Timestamp(int(when)))


__all__ = ['ScheduleAt', 'at', 'interval', 'schedule_immediate']
