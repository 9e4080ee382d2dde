"""What the build releases before the snapshot (module_sdk/runtime/spacetime.c, build/runtime.py) stays usable."""

from __future__ import annotations

from pathlib import Path

from module_sdk.build import build
from tests.test_module_sdk_wasm import Host

ROOT = Path(__file__).resolve().parent.parent

MODULE = '''
from module_sdk import ReducerContext, SenderError, reducer


@reducer
def compile_at_runtime(ctx: ReducerContext):
    # the build drops the interpreter's AST types (created by compile() at build time); compile() re-creates them
    tree = compile("x = 1 + 2", "<t>", "exec", 0x400)  # ast.PyCF_ONLY_AST
    if type(tree).__name__ != "Module" or type(tree.body[0]).__name__ != "Assign":
        raise SenderError(f"bad tree {tree!r}")
    ns = {}
    exec(compile(tree, "<t>", "exec"), ns)
    exec(compile("y = x * 2", "<s>", "exec"), ns)
    if ns["y"] != 6:
        raise SenderError("bad exec")


@reducer
def frozen_bootstrap(ctx: ReducerContext):
    # the bootstrap's marshal data is zeroed after init; importing it again fails cleanly, nothing crashes
    import sys
    if "_frozen_importlib" not in sys.modules:
        raise SenderError("bootstrap missing")
    import _imp
    try:
        _imp.find_frozen("_frozen_importlib")
    except ImportError as e:
        raise SenderError(f"ImportError: {e}") from None
    raise SenderError("found")


@reducer
def builtin_docs(ctx: ReducerContext):
    # -OO for builtins (strip_builtin_docs in spacetime.c): docstrings dropped, __text_signature__ kept
    import inspect
    import os
    got = [str(inspect.signature(len)), str(inspect.signature(list.append)), str(inspect.signature(dict.get))]
    if got != ["(obj, /)", "(self, object, /)", "(self, key, default=None, /)"]:
        raise SenderError(f"signatures {got}")
    for obj in (len, list, list.append, dict.get, int.__add__, os, os.stat_result.st_size, Exception.args):
        if obj.__doc__:
            raise SenderError(f"doc kept: {obj!r} {obj.__doc__!r}")
    if [1, 2].pop() != 2 or os.stat_result.__name__ != "stat_result" or SyntaxError("m").text is not None:
        raise SenderError("names")
'''


def test_compile_and_frozen_lookups_after_the_snapshot(tmp_path):
    src = tmp_path / "released.py"
    src.write_text(MODULE)
    host = Host(build(src, tmp_path / "released.wasm").output)
    for _ in range(2):
        assert host.call_reducer(0) == (0, "")
    status, msg = host.call_reducer(1)
    assert status == 1 and msg.startswith(("ImportError", "found")), msg
    assert host.call_reducer(2) == (0, "")


def test_quickstart_size_budget(tmp_path):
    from module_sdk.build.optimize import optimizer_id

    size = build(ROOT / "examples" / "quickstart", tmp_path / "q.wasm").size
    if optimizer_id() != "none":  # Binaryen present (Linux x86_64): the 4 MB target
        assert size < 2_796_000, size  # 2,740,319 B on 2026-12-05 (heap stored LZ4-compressed) + 2 %
    else:  # the unoptimized runtime elsewhere
        assert size < 3_200_000, size  # 3,136,846 B on 2026-12-05 + 2 %
