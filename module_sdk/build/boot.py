# The boot script: runs INSIDE the wasm module, once, while the build pre-initializes it.
#
# The C runtime (module_sdk/runtime/spacetime.c) compiles this text, calls install() before the
# interpreter finishes initializing (so even `encodings` comes through our importer), then main().
# Every module is fetched from the build host through _spacetime._build_ask, so only what is actually
# imported ends up in the snapshot, and sources are compiled by the CPython inside wasm: the build
# host's own Python version never matters.
#
# Build-host protocol (queries are bytes, answers are bytes):
#   b"?config"            -> b"main=<name>\n"
#   b"?eager"             -> b"<name>,<name>" modules user code imports inside functions, not yet served
#   b"?sources"           -> (origin \0 length \0 source)* of the user files served, for traceback lines
#   b"find:<name>"        -> b"" (not found) | tag + origin + b"\0" + payload
#                            tag: M/P = source of a module/package, m/p = marshalled code object;
#                            origins not starting with "<", "module_sdk/" or "spacetime_core/" are user code
#   b"code:<name>\0<marshal>"   a code object compiled here, for the build cache
#   b"error:<report>"     a failure report (see _report)
#   b"stats:<report>"     heap statistics, sent only when ?config says stats=1 (SPACETIME_PY_BUILD_STATS=1)
import _frozen_importlib as _bootstrap
import marshal
import sys

import _spacetime

_ask = _spacetime._build_ask

# A real server runs wasm on wasmtime's default 512 KiB native stack.  Recursion through C code (map,
# __getattr__, properties, __init__, ...) costs up to ~2 KiB of it per level CPython counts, so WASI
# CPython's default limit (600) lets such code overflow the stack and trap (instance discarded, no
# traceback).  At 200 every pattern in tests/test_host_limits.py raises RecursionError first (measured
# overflow at ~280); plain Python-to-Python recursion is limited to the same depth.
RECURSION_LIMIT = 200


class _BuildFinder:
    """Serves modules from the build host (user code, module_sdk, the wasm stdlib, pure-Python deps)."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        reply = _ask(b"find:" + name.encode())
        if not reply:
            return None
        tag = reply[:1]
        origin, _, payload = reply[1:].partition(b"\0")
        spec = _bootstrap.spec_from_loader(name, cls, origin=origin.decode(), is_package=tag in (b"P", b"p"))
        spec.has_location = True
        spec.loader_state = (tag, payload)
        return spec

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        spec = module.__spec__
        tag, payload = spec.loader_state
        spec.loader_state = None
        if tag in (b"M", b"P"):
            # The stdlib and the SDK drop docstrings (-OO); user code and dependencies keep theirs.
            library = spec.origin.startswith(("<stdlib>", "module_sdk/", "spacetime_core/"))
            code = compile(payload, spec.origin, "exec", dont_inherit=True, optimize=2 if library else 0)
            _ask(b"code:" + spec.name.encode() + b"\0" + marshal.dumps(code))
        else:
            code = marshal.loads(payload)
        del payload
        exec(code, module.__dict__)


class _NotBundled:
    """After the snapshot: an import nobody made at load time can't be served any more; say why."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        raise ModuleNotFoundError(
            f"No module named {name!r}: it was not imported when the module was built. A SpacetimeDB module is "
            f"snapshotted at build time, so import every module at the top level of your code "
            f"(add `import {name}` there) and rebuild.",
            name=name,
        )


class _SkipZipimport:
    """While the interpreter initializes: CPython imports the frozen zipimport only to add a path hook, and a
    module has no sys.path to hook (a missing zipimport is skipped silently). `import zipimport` still works."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "zipimport":
            raise ModuleNotFoundError("not during module init", name=name)
        return None


_finder = _BuildFinder()


def install():
    sys.meta_path.insert(0, _SkipZipimport)
    sys.meta_path.append(_finder)


def _report(exc):
    """Send the failure to the build host as tab-separated lines it can map back to the user's files."""
    lines = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        lines.append(f"frame\t{code.co_filename}\t{tb.tb_lineno}\t{code.co_name}")
        tb = tb.tb_next
    if isinstance(exc, SyntaxError):
        lines.append(f"syntax\t{exc.filename}\t{exc.lineno or 0}\t{exc.offset or 0}")
    name = exc.name if isinstance(exc, ImportError) and exc.name else ""
    lines.append(f"import\t{name}")
    msg = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    lines.append(f"exc\t{type(exc).__name__}\t{msg}")
    _ask(b"error:" + "\n".join(lines).encode("utf-8", "replace"))


def main():
    if _SkipZipimport in sys.meta_path:
        sys.meta_path.remove(_SkipZipimport)
    sys.setrecursionlimit(RECURSION_LIMIT)  # before user code, which may set its own
    # The build retargets this import (build.py UNREACHABLE_IMPORTS) so the module loads on servers before
    # 2.2: nothing may be able to call it.  module_sdk clears tables with 10.0 calls instead.
    del _spacetime.datastore_clear
    config = dict(line.split("=", 1) for line in _ask(b"?config").decode().splitlines() if "=" in line)
    try:
        __import__(config["main"])
        while True:  # lazy imports found in the user files served so far; may reveal more user files
            names = _ask(b"?eager").decode()
            if not names:
                break
            for name in names.split(","):
                try:
                    __import__(name)
                except ModuleNotFoundError as e:
                    if e.name != name:  # an optional import that is really missing stays a runtime matter
                        raise
        from module_sdk import _dispatch as d
        from module_sdk import log as _log

        _log.set_sources(_ask(b"?sources"))
    except BaseException as e:  # noqa: BLE001 - every failure must reach the build host, not trap
        _report(e)
        return None
    sys.meta_path.remove(_finder)
    sys.meta_path.append(_NotBundled)
    for name in list(sys.modules):  # the boot namespace is discarded; drop what only it needed
        if name == "_spacetime_boot":
            del sys.modules[name]
    if config.get("stats") == "1":
        _stats()
    return (d.describe_module, d.call_reducer, d.call_procedure, d.call_view, d.call_view_anon, d.call_http_handler)


def _stats():
    """A debugging aid: live objects by type and code/function bytes by file, sent to the build host."""
    import gc

    gc.collect()
    seen, by_type, by_file = set(), {}, {}
    todo = list(gc.get_objects())
    for o in todo:
        if id(o) in seen:
            continue
        seen.add(id(o))
        size = sys.getsizeof(o)
        t = type(o).__name__
        n, b = by_type.get(t, (0, 0))
        by_type[t] = (n + 1, b + size)
        todo.extend(r for r in gc.get_referents(o) if id(r) not in seen and not gc.is_tracked(r))
        code = getattr(o, "__code__", None) if t == "function" else (o if t == "code" else None)
        if code is not None:
            key = code.co_filename
            by_file[key] = by_file.get(key, 0) + size
    lines = [f"type\t{t}\t{n}\t{b}" for t, (n, b) in sorted(by_type.items(), key=lambda kv: -kv[1][1])]
    lines += [f"file\t{f}\t{b}" for f, b in sorted(by_file.items(), key=lambda kv: -kv[1])]
    lines += [f"module\t{m}" for m in sorted(sys.modules)]
    _ask(b"stats:" + "\n".join(lines).encode("utf-8", "replace"))
