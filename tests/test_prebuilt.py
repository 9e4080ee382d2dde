"""The prebuilt folder a wheel ships (module_sdk/build/prebuilt.py): with it, module builds use the shipped runtime
and stdlib and need nothing from the toolchain; the module they build is the one a checkout builds."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from module_sdk.build import build, prebuilt, runtime, toolchain

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("prebuilt")
    prebuilt.write(dest)
    return dest


def test_the_prebuilt_folder_holds_the_runtime_its_key_and_a_lean_stdlib(shipped):
    assert (shipped / "runtime.wasm").read_bytes() == runtime.build_runtime().read_bytes()
    assert (shipped / "runtime.key").read_text().strip() == runtime.source_runtime_key()
    names = zipfile.ZipFile(shipped / "stdlib.zip").namelist()
    assert {"os.py", "json/__init__.py", "importlib/_bootstrap.py", "collections/__init__.py"} <= set(names)
    assert not [n for n in names if n.startswith(("test/", "idlelib/", "tkinter/", "site-packages/"))
                or "/tests/" in n or not n.endswith(".py")]


def test_a_build_from_the_prebuilt_folder_needs_no_toolchain_and_matches(shipped, tmp_path, monkeypatch):
    checkout = build(ROOT / "examples" / "quickstart", tmp_path / "checkout.wasm").output.read_bytes()
    monkeypatch.setenv("SPACETIME_PY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(prebuilt, "PREBUILT_DIR", shipped)

    def no_toolchain(*a, **k):
        raise AssertionError("the toolchain was used")

    for mod, name in ((runtime, "build_runtime"), (runtime, "wasi_python_dir"), (runtime, "stdlib_dir"),
                      (toolchain, "wasi_python_dir"), (toolchain, "stdlib_dir")):
        monkeypatch.setattr(mod, name, no_toolchain)
    assert runtime.ensure_runtime() == shipped / "runtime.wasm"
    key = (shipped / "runtime.key").read_text().strip()
    assert runtime.runtime_key() == key
    assert prebuilt.module_stdlib_dir() == tmp_path / "cache" / f"stdlib-{key}"
    wheel = build(ROOT / "examples" / "quickstart", tmp_path / "wheel.wasm").output.read_bytes()
    # The same module: the same definition and the same behaviour.  (Not always the same bytes: after some
    # other builds in the same process the snapshot's heap can differ by a few bytes -- an order-dependent
    # allocation, noted in benchmarks/README.md, Install size.)
    from harness.host import Database
    from harness.host.describe import module_def_from_wasm
    from spacetime_core.sats import ConnectionId, Identity

    assert repr(module_def_from_wasm(wheel)) == repr(module_def_from_wasm(checkout))
    who = Identity.from_bytes(bytes(range(32)))
    rows = []
    for wasm in (wheel, checkout):
        db = Database.create(wasm, owner=who)
        assert db.client_connected(who, ConnectionId.from_bytes(bytes(range(16)))).committed
        assert db.call_reducer("set_name", ["Ada"], sender=who).committed
        assert not db.call_reducer("send_message", [""], sender=who).committed
        rows.append(sorted(db.rows("user")))
    assert rows[0] == rows[1] and len(rows[0]) == 1
