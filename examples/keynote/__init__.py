"""The keynote transfer benchmark module (upstream's templates/keynote-2), in Python.

Same table and reducers as upstream's Rust and TypeScript versions, so upstream's load generator and ours
(benchmarks/bench_keynote.py) can drive it:

    accounts {id: u32 primary key (hash index), balance: i64}
    seed(n, initial_balance)     delete every account, then create accounts 0..n-1 with that balance
    transfer(from, to, amount)   move `amount` from one account to another; errors (rolled back):
                                 same_account, non_positive_amount, account_missing, insufficient_funds

Build: spacetime-py build examples/keynote
"""

from module_sdk import ReducerContext, SenderError, i64, log, primary_key, reducer, table, u32


@table(public=True)
class Accounts:
    id: u32 = primary_key(index="hash")
    balance: i64


@reducer
def seed(ctx: ReducerContext, n: u32, initial_balance: i64) -> None:
    """Reset the table to `n` accounts holding `initial_balance` each."""
    accounts = ctx.db.accounts
    accounts.clear()
    for i in range(n):
        accounts.insert(Accounts(id=i, balance=initial_balance))
    log.info(f"seeded {n} accounts with balance {initial_balance}")


@reducer
def transfer(ctx: ReducerContext, from_: u32, to: u32, amount: i64) -> None:
    """Move `amount` from account `from` to account `to` (the parameter is published as `from`)."""
    if from_ == to:
        raise SenderError("same_account")
    if amount <= 0:
        raise SenderError("non_positive_amount")
    by_id = ctx.db.accounts.id
    src = by_id.find(from_)
    dst = by_id.find(to)
    if src is None or dst is None:
        raise SenderError("account_missing")
    if src.balance < amount:
        raise SenderError("insufficient_funds")
    src.balance -= amount
    dst.balance += amount
    by_id.update(src)
    by_id.update(dst)
