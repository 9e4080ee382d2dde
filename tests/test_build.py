"""The build: a Python module becomes a core .wasm a SpacetimeDB server accepts (issue: build)."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
import wasmtime as wt

from module_sdk import abi_spec
from module_sdk.build import BuildError, InvalidModule, build, validate_module
from module_sdk.build import wasm as wasmfmt

build_module = sys.modules["module_sdk.build.build"]  # the submodule (the package exports the function)

pytestmark = pytest.mark.slow


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_output_imports_only_spacetime_abi_and_exports_what_the_host_calls(tmp_path):
    src = write(tmp_path, "tiny.py", "import module_sdk\n")
    result = build(src, tmp_path / "tiny.wasm")
    data = result.output.read_bytes()
    info = validate_module(data)
    assert info.imports, "ABI detection needs at least one spacetime import"
    for imp in info.imports:
        assert imp.module.startswith("spacetime_10.")
        assert (imp.module, imp.name) in abi_spec.IMPORTS
    names = {e.name for e in info.exports}
    assert {"memory", "__describe_module__", "__call_reducer__"} <= names
    # the pre-initialization entry points are gone: a server must not re-run them
    assert not names & {"_initialize", "stdb_build_init"}
    assert not any(n.startswith("__snap_g") for n in names)
    # and wasmtime with only MVP-era features accepts it
    engine = wt.Engine()
    module = wt.Module(engine, data)
    assert {i.module for i in module.imports} <= {f"spacetime_10.{m}" for m in range(6)}


def test_build_is_reproducible(tmp_path):
    src = write(tmp_path, "same.py", "import module_sdk\nX = [i * i for i in range(100)]\n")
    a = build(src, tmp_path / "a.wasm").output.read_bytes()
    b = build(src, tmp_path / "b.wasm").output.read_bytes()
    assert a == b


def test_warm_build_takes_one_pass_and_changed_source_two(tmp_path, monkeypatch):
    src = write(tmp_path, "passes.py", "import module_sdk\nVALUE = 1\n")
    build(src, tmp_path / "p.wasm")
    assert build(src, tmp_path / "p.wasm").phases == 1  # everything came from the code cache
    src.write_text(f"import module_sdk\nVALUE = {time.time_ns()}\n")  # never seen by the code cache
    host_compiles = sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11)
    assert build(src, tmp_path / "p.wasm").phases == (1 if host_compiles else 2)  # compiled by this interpreter
    monkeypatch.setattr(build_module, "_host_compile", lambda origin, source: None)
    src.write_text(f"import module_sdk\nVALUE = {time.time_ns()}\n")
    assert build(src, tmp_path / "p.wasm").phases == 2  # compiled inside wasm, then a clean pass


def test_syntax_error_points_at_user_file_and_line(tmp_path):
    src = write(tmp_path, "broken.py", "import module_sdk\n\ndef f(:\n    pass\n")
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "x.wasm")
    msg = str(e.value)
    assert f'File "{src}", line 3' in msg
    assert "SyntaxError" in msg


def test_exception_at_import_shows_user_traceback(tmp_path):
    write(tmp_path, "pkg/__init__.py", "from .inner import VALUE\n")
    inner = write(tmp_path, "pkg/inner.py", "import module_sdk\nVALUE = {}['missing']\n")
    with pytest.raises(BuildError) as e:
        build(tmp_path / "pkg", tmp_path / "x.wasm")
    msg = str(e.value)
    assert f'File "{inner}", line 2, in <module>' in msg
    assert "VALUE = {}['missing']" in msg
    assert "KeyError: 'missing'" in msg


def test_schema_error_starts_at_the_users_line_not_in_the_sdk(tmp_path):
    src = write(tmp_path, "clash.py", """\
        from module_sdk import table, u64, unique


        @table(public=True)
        class Lobby:
            id: u64
            count: u64 = unique()
        """)
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "x.wasm")
    msg = str(e.value)
    assert f'File "{src}", line 4' in msg and "@table(public=True)" in msg
    assert "schema.py" not in msg and "index accessor 'count' clashes" in msg


def test_a_2_gib_allocation_is_a_memory_error(tmp_path):
    src = write(tmp_path, "big.py", "import module_sdk\nBIG = bytearray(2 * 1024**3)\n")
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "x.wasm")
    assert "MemoryError: cannot allocate 2 GiB or more in one object" in str(e.value)
    assert "\nOverflowError" not in str(e.value)


def test_single_file_modules_in_one_folder_get_their_own_output_and_progress_is_reported(tmp_path):
    a = write(tmp_path, "alpha.py", f"import module_sdk\nA = {str(tmp_path)!r}\n")  # new source: not in the code cache
    b = write(tmp_path, "beta.py", "import module_sdk\nB = 2\n")
    steps: list[str] = []
    ra = build(a, progress=steps.append)
    rb = build(b)
    assert ra.output == tmp_path / "target" / "alpha.wasm" and rb.output == tmp_path / "target" / "beta.wasm"
    assert ra.output.read_bytes() != rb.output.read_bytes()
    # a CPython 3.11 build host compiles the sources itself; elsewhere they are compiled inside the module
    reported = ("importing alpha inside the module", "compiling Python inside the module: 1 modules (alpha)")
    assert any(s.startswith(reported) for s in steps), steps
    assert steps[-1] == "validating"
    write(tmp_path, "pkg/__init__.py", "import module_sdk\n")
    assert build(tmp_path / "pkg").output == tmp_path / "pkg" / "target" / "module.wasm"


def test_runtime_error_traceback_starts_and_ends_in_user_code(tmp_path):
    from harness.host import Database
    from spacetime_core.sats import Identity

    src = write(tmp_path, "over.py", """\
        from module_sdk import ReducerContext, reducer, table, u32


        @table(public=True)
        class T:
            a: u32


        @reducer
        def put(ctx: ReducerContext, n: u32) -> None:
            ctx.db.t.insert(T(a=n * 2))
        """)
    owner = Identity.from_bytes(bytes(range(32)))
    db = Database.create(build(src, tmp_path / "x.wasm").output.read_bytes(), owner=owner)
    out = db.call_reducer("put", [3_000_000_000], sender=owner)
    assert not out.committed and "out of range" in out.error
    *_, rec, host = db.logs()  # the module's traceback, then the host's Error line with the message (upstream's)
    assert host.filename == "__spacetimedb__" and host.function == "put" and "out of range" in host.message
    assert rec.filename == "over.py" and rec.line == 11
    lines = rec.message.splitlines()
    # the line that failed is shown, as CPython does: the build stores the user's files in the module
    assert lines[1:] == ["Traceback (most recent call last):", '  File "over.py", line 11, in put',
                         "    ctx.db.t.insert(T(a=n * 2))", f"  ({lines[4].split('(')[1]}", lines[-1]]
    assert "frames inside module_sdk)" in lines[4] and "During handling" not in rec.message
    assert lines[-1].startswith("BsatnError: BSATN encode error at T.a: expected U32")


def test_missing_dependency_is_named(tmp_path):
    src = write(tmp_path, "needs.py", "import module_sdk\nimport definitely_not_installed_pkg\n")
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "x.wasm")
    assert "definitely_not_installed_pkg" in str(e.value)
    assert "pure Python" in str(e.value)


def test_compiled_extension_dependency_is_refused_by_name(tmp_path):
    write(tmp_path, "fastthing.cpython-311-x86_64-linux-gnu.so", "not really a shared object")
    src = write(tmp_path, "uses_ext.py", "import module_sdk\nimport fastthing\n")
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "x.wasm")
    assert "compiled extension" in str(e.value)
    assert "fastthing" in str(e.value)


def test_unsupported_stdlib_c_extension_is_named(tmp_path):
    src = write(tmp_path, "db.py", "import module_sdk\nimport sqlite3\n")
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "x.wasm")
    assert "_sqlite3" in str(e.value) and "does not include" in str(e.value)


def test_package_reraising_its_own_import_error_names_the_compiled_extension(tmp_path):
    # numpy's way: the compiled core fails, the package raises a bare ImportError with a message that begins with
    # blank lines; the build shows the message (not a blank line) and names the extension
    write(tmp_path, "fakenp/_core.cpython-311-x86_64-linux-gnu.so", "not really a shared object")
    write(tmp_path, "fakenp/__init__.py", """\
        try:
            from . import _core
        except ImportError as exc:
            raise ImportError("\\n\\nIMPORTANT: importing the C-extensions failed.\\nSecond line") from exc
        """)
    src = write(tmp_path, "uses_np.py", "import module_sdk\nimport fakenp\n")
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "x.wasm")
    text = str(e.value)
    assert "ImportError: IMPORTANT: importing the C-extensions failed.\nSecond line" in text
    assert "hint: 'fakenp._core' is a compiled extension" in text and "_core.cpython-311" in text


def test_stdlib_c_module_left_out_is_named_as_such_with_its_importer(tmp_path):
    src = write(tmp_path, "sel.py", "import module_sdk\nimport selectors\n")
    with pytest.raises(BuildError) as e:
        build(src, tmp_path / "x.wasm")
    text = str(e.value)
    assert "'select' is a standard-library C module that the module runtime does not include" in text
    assert "selectors.py imports it" in text and "install it" not in text


def test_dependencies_from_extra_path_are_bundled(tmp_path):
    write(tmp_path, "vendor/helperlib/__init__.py", "def triple(x):\n    return 3 * x\n")
    src = write(tmp_path, "app/uses.py", "import module_sdk\nimport helperlib\nN = helperlib.triple(14)\n")
    result = build(src, tmp_path / "x.wasm", extra_paths=[tmp_path / "vendor"])
    assert "helperlib" in result.modules


def test_lazy_import_inside_a_function_is_bundled(tmp_path):
    src = write(tmp_path, "lazy.py", "import module_sdk\n\ndef later():\n    import colorsys\n    return colorsys\n")
    result = build(src, tmp_path / "x.wasm")
    assert "colorsys" in result.modules


def test_print_at_import_time_is_shown_by_the_build(tmp_path):
    src = write(tmp_path, "chatty.py", "import module_sdk\nprint('hello from load time')\n")
    result = build(src, tmp_path / "x.wasm")
    assert ("info", "hello from load time") in result.logs


# ---- validation of what a SpacetimeDB server would refuse ----

def wat(text: str) -> bytes:
    return wt.wat2wasm(text)


GOOD = """
(module
  (import "spacetime_10.0" "bytes_sink_write" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "__describe_module__") (param i32))
  (func (export "__call_reducer__") (param i32 i64 i64 i64 i64 i64 i64 i64 i32 i32) (result i32) i32.const 0))
"""


def test_validator_accepts_a_minimal_module():
    validate_module(wat(GOOD))


@pytest.mark.parametrize(
    "mutation, needle",
    [
        (('(import "spacetime_10.0" "bytes_sink_write"', '(import "wasi_snapshot_preview1" "fd_write"'), "WASI"),
        (('"bytes_sink_write" (func (param i32 i32 i32)', '"bytes_sink_write" (func (param i32 i32)'), "signature"),
        (('"spacetime_10.0" "bytes_sink_write"', '"spacetime_10.6" "bytes_sink_write"'), "not a SpacetimeDB ABI"),
        (('(export "memory")', ""), "memory"),
        (('(export "__call_reducer__")', ""), "__call_reducer__ is missing"),
        (("(param i32 i64 i64 i64 i64 i64 i64 i64 i32 i32)", "(param i32 i64 i64 i64 i64 i64 i64 i32 i32)"),
         "__call_reducer__ has signature"),
        (("(memory (export \"memory\") 1)", "(memory (export \"memory\") 1 1 shared)"), "wasm feature"),
    ],
)
def test_validator_refuses_what_a_server_refuses(mutation, needle):
    old, new = mutation
    assert old in GOOD
    with pytest.raises(InvalidModule) as e:
        validate_module(wat(GOOD.replace(old, new)))
    assert needle in str(e.value)


def test_build_output_check_is_stricter_than_a_server():
    """Bulk memory loads on a real server (and our host) but is refused in our own build output."""
    bulk = wat(GOOD.replace("(func (export \"__describe_module__\") (param i32))",
                            "(func (export \"__describe_module__\") (param i32) "
                            "i32.const 0 i32.const 0 i32.const 0 memory.fill)"))
    validate_module(bulk)
    with pytest.raises(InvalidModule, match="beyond MVP"):
        validate_module(bulk, strict=True)


def test_validator_names_text_format_and_components():
    with pytest.raises(InvalidModule, match="text format"):
        validate_module(GOOD.encode())
    with pytest.raises(InvalidModule, match="component"):
        validate_module(b"\0asm\x0d\0\x01\0")
    with pytest.raises(InvalidModule, match="not a WebAssembly binary"):
        validate_module(b"garbage bytes")


def test_section_roundtrip_is_lossless():
    data = wat(GOOD)
    assert wasmfmt.emit(wasmfmt.sections(data)) == data


def test_data_segments_merge_small_gaps_and_respect_the_segment_cap(monkeypatch):
    from module_sdk.build import snapshot

    image = b"\1" * 4 + b"\0" * 8 + b"\2" * 4 + b"\0" * 9 + b"\3" + b"\0" * 40 + b"\4"
    assert snapshot._nonzero_runs(image) == [[0, 16], [25, 26], [66, 67]]  # gaps <= SEGMENT_GAP are merged
    assert snapshot._nonzero_runs(bytes(100)) == []
    monkeypatch.setattr(snapshot, "MAX_SEGMENTS", 2)
    assert snapshot._nonzero_runs(image) == [[0, 26], [66, 67]]  # over the cap: the narrowest gaps go first
    runs = snapshot._nonzero_runs(b"".join(b"\1" + bytes(10 + i) for i in range(50)))
    assert len(runs) == 2 and runs[0][0] == 0


def test_snapshot_keeps_no_dead_stack_and_no_freed_garbage(tmp_path):
    """Memory freed during the build is zeroed and the dead C stack is cleared, so neither becomes data."""
    from module_sdk.build import snapshot

    src = write(tmp_path, "garbage.py", """\
        import module_sdk
        for _ in range(50):
            junk = [bytes([0x5A]) * 4000 for _ in range(25)]  # 5 MB of 0x5A, all freed again
        del junk
        KEEP = b"\\x5b" * 3000
    """)
    images = []
    original = snapshot.Snapshotter._emit

    def spy(self, image, *args):
        images.append(image)
        return original(self, image, *args)

    snapshot.Snapshotter._emit = spy
    try:
        result = build(src, tmp_path / "garbage.wasm")
    finally:
        snapshot.Snapshotter._emit = original
    image = images[-1]
    assert b"\x5b" * 3000 in image  # live data is kept
    assert b"\x5a" * 4000 not in image  # freed blocks are zero
    from module_sdk.build.build import _snapshotter
    from module_sdk.build.runtime import ensure_runtime

    stack_top = _snapshotter(ensure_runtime()).stack_top
    assert stack_top and image[:stack_top] == bytes(stack_top)
    assert result.size < 8_000_000


def test_host_errors_keep_their_message_in_a_built_module(tmp_path):
    # the SDK is built without docstrings (-OO); the errors' messages must not depend on them
    from harness.host import Database
    from spacetime_core.sats import Identity

    src = write(tmp_path, "uniq.py", """\
        from module_sdk import ReducerContext, reducer, table, u32, unique


        @table(public=True)
        class Seat:
            n: u32 = unique()
            who: str


        @reducer
        def take(ctx: ReducerContext, n: u32, who: str) -> None:
            ctx.db.seat.insert(Seat(n=n, who=who))
        """)
    owner = Identity.from_bytes(bytes(32))
    db = Database.create(build(src, tmp_path / "x.wasm").output.read_bytes(), owner=owner)
    assert db.call_reducer("take", [1, "a"], sender=owner).committed
    out = db.call_reducer("take", [1, "b"], sender=owner)
    assert out.error == "UniqueAlreadyExists: a row with the same value in a unique column already exists"
