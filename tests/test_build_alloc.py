"""The runtime's own malloc (module_sdk/runtime/alloc.c) under churn: results stay right, memory stays bounded."""

from __future__ import annotations

from module_sdk.build import build
from tests.test_module_sdk_wasm import Host

MODULE = '''
from module_sdk import ReducerContext, SenderError, reducer

KEEP = {}


@reducer
def churn(ctx: ReducerContext):
    blobs = [bytes([i % 251]) * (i * 37 % 70000) for i in range(200)]  # small, medium and > 32 KB blocks
    grow = []
    for i in range(5000):  # realloc growth of a list and a bytearray
        grow.append(i)
    buf = bytearray()
    for i in range(3000):
        buf += bytes([i & 255]) * 7
    d = {str(i): [i] * (i % 9) for i in range(3000)}
    KEEP["last"] = sum(len(b) for b in blobs)  # survives the call
    if len(grow) != 5000 or sum(grow) != 5000 * 4999 // 2 or len(buf) != 21000 or buf[7 * 300] != 300 & 255:
        raise SenderError("corrupted")
    if sum(len(v) for v in d.values()) != sum(i % 9 for i in range(3000)):
        raise SenderError("corrupted dict")
    for i, b in enumerate(blobs):
        if len(b) != i * 37 % 70000 or (b and (b[0] != i % 251 or b[-1] != i % 251)):
            raise SenderError("corrupted blob")
'''


def test_allocator_churn_is_correct_and_bounded(tmp_path):
    src = tmp_path / "churn.py"
    src.write_text(MODULE)
    host = Host(build(src, tmp_path / "churn.wasm").output)
    memory = host.exports["memory"]
    for _ in range(5):
        assert host.call_reducer(0) == (0, "")
    warm = memory.size(host.store)
    for _ in range(30):
        assert host.call_reducer(0) == (0, "")
    assert memory.size(host.store) <= warm + 2  # freed chunks and big blocks are reused, not leaked
