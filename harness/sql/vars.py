"""System variables (`SET row_limit = n`, `SHOW row_limit`).

Upstream keeps them in the `st_var` system table; this host has no system tables, so they live on the
Database object (in memory: not persisted across a restart)."""

from __future__ import annotations

import weakref

VARIABLES = ("row_limit",)
_fallback: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _store(db) -> dict:
    d = getattr(db, "_sql_vars", None)
    if d is None:
        d = {}
        try:
            db._sql_vars = d
        except AttributeError:
            d = _fallback.setdefault(db, d)
    return d


def get_var(db, name: str):
    return _store(db).get(name)


def set_var(db, name: str, value) -> None:
    _store(db)[name] = value


def row_limit(db) -> int | None:
    return get_var(db, "row_limit")
