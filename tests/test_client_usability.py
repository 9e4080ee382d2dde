"""What a new client user trips over: generated bindings that name u64 / Option / sum types import and work
against the real server; a column called `name` keeps its index accessor; an index named like a table-handle
method is exposed as `<accessor>_index` and the mistaken spelling raises instead of silently doing something
else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from client_sdk.cache import ClientCache, TableDelta
from client_sdk.codegen import CodegenError, generate, generate_python
from client_sdk.module import IndexSpec, ModuleSpec, TableSpec
from harness.host.describe import module_def_from_wasm
from spacetime_core.sats import encode, product, u32

ROOT = Path(__file__).resolve().parents[1]


@product
class Item:
    id: u32
    count: u32
    name: str


def test_dynamic_cache_index_named_like_a_method_is_suffixed_and_the_mistake_raises():
    spec = ModuleSpec.of([TableSpec("item", Item.__sats_type__, primary_key=0,
                                    indexes=(IndexSpec("count", (1,), False), IndexSpec("name", (2,), True)))])
    cache = ClientCache(spec)
    cache.apply([TableDelta("item", inserts=[encode(Item.__sats_type__, Item(1, 5, "arena"))])])
    t = cache.table("item")
    assert t.name.find("arena") == Item(1, 5, "arena")  # `name` is the index, not the table's name
    assert t.table_name == "item"
    assert t.count() == 1  # the method still works
    assert list(t.count_index.filter(5)) == [Item(1, 5, "arena")]
    with pytest.raises(AttributeError, match=r"the index 'count' is `item.count_index`"):
        t.count.filter(5)


@pytest.mark.slow
def test_bindings_with_u64_option_sum_and_a_name_column_import_and_work(tmp_path):
    from module_sdk.build import build
    from tests.test_client_e2e import Server, publish, run

    wasm = build(ROOT / "tests" / "data" / "lobbymod", tmp_path / "lobby.wasm").output.read_bytes()
    mdef = module_def_from_wasm(wasm)
    generate(mdef, tmp_path / "lobby_bind")
    # a fresh interpreter: importing must not depend on anything this process imported
    out = subprocess.run([sys.executable, "-c", "import lobby_bind as b; print(b.MODULE.procedures['summary'])"],
                         cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert out.returncode == 0, out.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        import lobby_bind as b
    finally:
        sys.path.remove(str(tmp_path))

    async def body() -> Any:
        server = await Server(tmp_path / "data").start()
        await publish(server, wasm, "lobbies")
        conn = await b.DbConnection.builder().with_uri(server.uri).with_database_name("lobbies").connect()
        await conn.subscription_builder().subscribe(["SELECT * FROM lobby"])
        ev = await conn.reducers.add_lobby(2**63, "arena", b.Mode.team(4))
        assert ev.committed
        row = conn.db.lobby.name.find("arena")
        assert row is not None and row.id == 2**63 and row.mode == b.Mode.team(4)
        assert conn.db.lobby.table_name == "lobby"
        assert await conn.procedures.summary(2**63) == b.LobbySummary(name="arena", players=0)
        assert await conn.procedures.summary(1) is None
        await conn.disconnect()
        await server.stop()

    run(body())


def test_codegen_refuses_two_indexes_that_would_share_an_attribute():
    class Ix:
        def __init__(self, accessor: str, cols: tuple[int, ...]):
            self.accessor, self.columns = accessor, cols

    class FakeTable:
        name = "item"
        row_ref = 0
        indexes = [Ix("count", (1,)), Ix("count_index", (1,))]
        unique: list = []
        column_names = ["id", "count", "name"]
        primary_key = None
        is_event = False
        public = True

    class FakeDef:
        typespace = [Item.__sats_type__]
        types: list = []
        tables = [FakeTable()]
        reducers: list = []
        procedures: list = []
        views: list = []

    with pytest.raises(CodegenError, match="would both be `count_index`"):
        generate_python(FakeDef())  # type: ignore[arg-type]
