"""A parameter named with a Python keyword keeps its real name: `from_` publishes as `from` (like Rust's
`r#from`), the host takes named arguments by the published name, and generated client bindings map it back
to `from_` so the call with named arguments works end to end."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys

import pytest

from client_sdk.codegen import generate, generate_python
from harness.host import Database
from harness.host.describe import module_def_from_wasm
from module_sdk.build import build
from module_sdk.schema import published_param_name
from spacetime_core.sats import Identity
from tests.test_client_e2e import Server, publish

pytestmark = pytest.mark.slow

MODULE = '''
from module_sdk import Identity, ReducerContext, primary_key, reducer, table, u64


@table(public=True)
class Ledger:
    id: u64 = primary_key(auto_inc=True)
    sender: Identity
    receiver: Identity
    amount: u64


@reducer
def transfer(ctx: ReducerContext, from_: Identity, to: Identity, amount: u64) -> None:
    ctx.db.ledger.insert(Ledger(sender=from_, receiver=to, amount=amount))
'''
A = Identity.from_bytes(bytes([1] * 32))
B = Identity.from_bytes(bytes([2] * 32))


@pytest.fixture(scope="module")
def wasm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kw")
    (tmp / "bank.py").write_text(MODULE)
    return build(tmp / "bank.py", tmp / "bank.wasm").output.read_bytes()


def test_published_name_rule():
    assert [published_param_name(n) for n in ("from_", "class_", "to", "amount_", "from__", "_")] == \
        ["from", "class", "to", "amount_", "from__", "_"]


def test_module_def_has_the_real_name_and_the_host_takes_it(wasm):
    mdef = module_def_from_wasm(wasm)
    (transfer,) = [r for r in mdef.reducers if r.name == "transfer"]
    assert [n for n, _ in transfer.params.elements] == ["from", "to", "amount"]
    db = Database.create(wasm, owner=A)
    assert db.call_reducer("transfer", {"from": A, "to": B, "amount": 5}).committed
    assert [(r["sender"], r["receiver"], r["amount"]) for r in db.row_dicts("ledger")] == [(A, B, 5)]


def test_generated_bindings_are_importable_and_call_with_named_args(wasm, tmp_path):
    files = generate_python(module_def_from_wasm(wasm))
    assert "self, from_: Identity, to: Identity, amount: u64, *, timeout" in files["reducers.py"]
    assert "    from_: Identity  # published as `from`\n" in files["reducers.py"]
    generate(module_def_from_wasm(wasm), tmp_path / "bank_bindings")
    ruff = shutil.which("ruff") or str(sys.executable).rsplit("/", 1)[0] + "/ruff"
    r = subprocess.run([ruff, "check", "--no-cache", "--isolated", "--line-length", "120", "--select", "E,F,W,B",
                        str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        import bank_bindings
    finally:
        sys.path.remove(str(tmp_path))

    async def body():
        server = await Server(tmp_path / "data").start()
        try:
            await publish(server, wasm, "bank")
            conn = await bank_bindings.DbConnection.builder().with_uri(server.uri).with_database_name("bank") \
                .connect()
            try:
                await conn.subscription_builder().subscribe(["SELECT * FROM ledger"])
                ev = await conn.reducers.transfer(from_=A, to=B, amount=7)
                assert ev.args.from_ == A
                rows = [(x.sender, x.receiver, x.amount) for x in conn.db.ledger.iter()]
                assert rows == [(A, B, 7)]
            finally:
                await conn.disconnect()
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(body(), 60))
