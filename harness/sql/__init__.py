"""The SQL layer of the host: the /sql endpoint and subscription queries (shared/spec/sql-subset.md).

    from harness.sql import execute, compile_subscription, QueryCache, SqlError
    [res] = execute(db, "SELECT name FROM person WHERE age > 18 LIMIT 5", sender, owner=False)
    res.columns, res.rows                          # [(name, AlgebraicType)], [tuple]
    [res] = execute(db, "DELETE FROM person WHERE id = 3", db.owner, owner=True)
    res.affected, res.stats, res.txdata            # txdata: feed subscriptions like a reducer's

    plan = compile_subscription(db, "SELECT * FROM person WHERE age > 18", sender)
    plan.table_name, plan.initial(read_tx), plan.delta(txdata, read_tx_after)

Modules: parser (lexer + recursive descent, both dialects), check (names, literal typing, RLS), engine
(full and incremental evaluation of conjunctive queries), subscription (plans, QueryCache), execute (/sql).
"""

from .errors import SqlError
from .execute import QueryResult, execute
from .parser import parse_sql, parse_subscription
from .subscription import QueryCache, SubscriptionPlan, compile_subscription

__all__ = [
    "QueryCache",
    "QueryResult",
    "SqlError",
    "SubscriptionPlan",
    "compile_subscription",
    "execute",
    "parse_sql",
    "parse_subscription",
]
