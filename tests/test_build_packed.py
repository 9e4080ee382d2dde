"""The snapshot heap stored LZ4-compressed and unpacked on an instance's first call (runtime/unpack.c,
build/snapshot.py `_pack`): memory after unpacking is exactly the build's image, and every export works as the
first call of a fresh instance."""

from __future__ import annotations

import lz4.block
import pytest
import wasmtime as wt

from module_sdk.build import build, snapshot, wasm
from tests.test_module_sdk_wasm import MODULE, U32, U64, Host, s

pytestmark = pytest.mark.slow


def _data_segments(raw: bytes) -> list[tuple[int, bytes]]:
    return snapshot._static_data(raw)


def test_unpacked_memory_is_the_snapshot_image(tmp_path, monkeypatch):
    seen = {}
    emit = snapshot.Snapshotter._emit

    def capture(self, image, pages, values, drop, packed_at=None):
        seen.update(image=image, pages=pages, packed_at=packed_at)
        return emit(self, image, pages, values, drop, packed_at)

    monkeypatch.setattr(snapshot.Snapshotter, "_emit", capture)
    monkeypatch.setattr(snapshot, "BUILD_ONLY_EXPORTS", (snapshot.PACKED_AT,))  # keep `stdb_unpack` to call it alone
    src = tmp_path / "packed.py"
    src.write_text(MODULE)
    out = build(src, tmp_path / "packed.wasm").output
    raw = out.read_bytes()
    image = seen["image"]

    # the data section is the record and one block, and the block is the image's non-zero span
    (rec_at, record), (block_at, block) = _data_segments(raw)
    assert rec_at == seen["packed_at"]
    src_at, src_len, dst, dst_len = (int.from_bytes(record[i : i + 4], "little") for i in range(0, 16, 4))
    assert (src_at, src_len) == (block_at, len(block))
    assert image[:dst] == bytes(dst) and image[dst + dst_len :] == bytes(len(image) - dst - dst_len)
    assert lz4.block.decompress(block, uncompressed_size=dst_len) == image[dst : dst + dst_len]
    assert block_at + len(block) > dst + dst_len  # in place: the block overlaps the image's end

    engine = wt.Engine()
    store = wt.Store(engine)
    module = wt.Module(engine, raw)
    linker = wt.Linker(engine)
    for imp in {(i.module, i.name): i for i in module.imports}.values():  # a name may be imported twice
        linker.define_func(imp.module, imp.name, imp.type, lambda *a: 0)
    exports = linker.instantiate(store, module).exports(store)
    memory = exports["memory"]
    size = memory.data_len(store)
    assert size // 65536 >= seen["pages"] and size >= block_at + len(block)
    for _ in range(2):  # the second call finds nothing left to do
        exports["stdb_unpack"](store)
        after = bytes(memory.read(store, 0, size))
        assert after == image + bytes(size - len(image))
    assert memory.data_len(store) == size


def test_output_keeps_only_the_host_exports(tmp_path):
    src = tmp_path / "plain.py"
    src.write_text(MODULE)
    raw = build(src, tmp_path / "plain.wasm").output.read_bytes()
    names = {e.name for e in wasm.module_info(raw).exports}
    assert names == {"memory", "__describe_module__", "__call_reducer__", "__call_procedure__", "__call_view__",
                     "__call_view_anon__", "__call_http_handler__"}


@pytest.fixture(scope="module")
def module_wasm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("packed")
    (tmp / "firstcall.py").write_text(MODULE)
    return build(tmp / "firstcall.py", tmp / "firstcall.wasm").output


@pytest.mark.parametrize("first", ["describe", "reducer", "view", "procedure", "http"])
def test_every_export_works_as_a_fresh_instance_first_call(module_wasm, first):
    """What the real server does: `__describe_module__` on one fresh instance, then any export first on others."""
    warm = Host(module_wasm)
    warm.describe()
    fresh = Host(module_wasm)
    calls = {
        "describe": lambda h: h.describe(),
        "reducer": lambda h: h.call_reducer(0, s("Ann") + U32.pack(30)),
        "view": lambda h: h.call_view(0),
        "procedure": lambda h: h.call_procedure(0, U32.pack(21)),
        "http": lambda h: h.exports["__call_http_handler__"](h.store, 0, 0, 0, 0, 1, 2),
    }
    assert calls[first](fresh) == calls[first](warm)
    assert fresh.call_procedure(0, U32.pack(4)) == (0, U64.pack(8))
    assert fresh.describe() == warm.describe()


def test_unpacked_form_still_works_when_the_build_does_not_pack(tmp_path, monkeypatch):
    """Without the record (a runtime that lacks `stdb_packed_at`, here hidden from the build) the output is the
    non-zero runs as separate segments, and the runtime's first-call unpack finds nothing to do."""
    monkeypatch.setattr(snapshot, "PACKED_AT", "no_such_export")
    src = tmp_path / "unpacked.py"
    src.write_text(MODULE)
    raw = build(src, tmp_path / "unpacked.wasm").output.read_bytes()
    assert len(_data_segments(raw)) > 100
    host = Host(tmp_path / "unpacked.wasm")
    assert host.call_procedure(0, U32.pack(21)) == (0, U64.pack(42))
    assert host.call_reducer(0, s("Ann") + U32.pack(30)) == (0, "")
