"""`spacetime-py build`: a Python module (a .py file or a package folder) becomes a core .wasm.

1. Ensure the runtime wasm (cached per toolchain).
2. Phase 1: instantiate it and let the interpreter inside import the user's module; every source is
   served by `SourceResolver` and compiled *inside* wasm; the code objects come back and are cached.
3. Phase 2 (only if phase 1 compiled anything): a fresh instance imports the same modules from the
   compiled code, so the compiler's garbage is not part of the snapshot (it halves the size).  A CPython 3.11
   build host compiles the sources itself (`_host_compile`), so phase 1 is then the only pass.
4. Snapshot memory + globals into the output, retarget the import nothing can call (`UNREACHABLE_IMPORTS`),
   then validate it against the SpacetimeDB ABI.
"""

from __future__ import annotations

import marshal
import os
import re
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .runtime import ensure_runtime, runtime_key
from .snapshot import SnapshotError, Snapshotter
from .sources import Found, SourceResolver, is_sdk, lazy_imports
from .toolchain import cache_dir, digest
from .validate import validate_module
from .wasm import retarget_import

BOOT_SCRIPT = Path(__file__).with_name("boot.py")  # runs inside the module, never imported here
ASK_SINK = 0xFFFFFF00
ANSWER_SOURCE = 0xFFFFFF01
LEVELS = {0: "error", 1: "warn", 2: "info", 3: "debug", 4: "trace", 101: "panic"}
# The runtime links every import its C door declares, but a server refuses a module whose imports name an ABI
# minor it does not host (spacetime_10.5 arrived with SpacetimeDB 2.2).  boot.py removes these functions from
# `_spacetime` before any user code runs (the SDK uses 10.0 fallbacks), so no code path can reach the import
# and the build renames it to an older import of the same signature, which is then never called either.
UNREACHABLE_IMPORTS = {
    ("spacetime_10.5", "datastore_clear"): ("spacetime_10.0", "datastore_table_row_count"),
}

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A module could not be built; the message points at the user's file and line where possible."""


@dataclass
class ModuleProject:
    """Where a module's code lives: the import root and the name of its main module."""

    root: Path
    main: str
    source: Path
    single_file: bool = False  # built from a .py file named on the command line (several may share a folder)

    @classmethod
    def locate(cls, path: str | Path) -> ModuleProject:
        p = Path(path).resolve()
        if p.is_file():
            if p.suffix != ".py":
                raise BuildError(f"{p}: expected a .py file or a folder")
            if p.name == "__init__.py":
                return cls(p.parent.parent, p.parent.name, p)
            return cls(p.parent, p.stem, p, single_file=True)
        if p.is_dir():
            if (p / "__init__.py").is_file():
                return cls(p.parent, p.name, p / "__init__.py")
            for candidate in ("module.py", "main.py", "lib.py"):
                if (p / candidate).is_file():
                    return cls(p, candidate[:-3], p / candidate)
            raise BuildError(f"{p}: no __init__.py, module.py, main.py or lib.py in this folder")
        raise BuildError(f"{p}: no such file or folder")

    def default_output(self) -> Path:
        """`<folder>/target/module.wasm` for a package or folder, `<folder>/target/<stem>.wasm` for a single file
        (so `a.py` and `b.py` in one folder do not overwrite each other's build)."""
        return self.source.parent / "target" / (f"{self.source.stem}.wasm" if self.single_file else "module.wasm")


@dataclass
class BuildResult:
    output: Path
    size: int
    seconds: float
    phases: int
    modules: list[str]
    logs: list[tuple[str, str]] = field(default_factory=list)


class _BuildHost:
    """The build side of the boot protocol (see boot.py) plus console_log during module load."""

    def __init__(self, project: ModuleProject, resolver: SourceResolver, code_cache: dict[str, bytes], rt_key: str,
                 say: Progress | None = None):
        self.say = say or (lambda msg: None)
        self.project = project
        self.resolver = resolver
        self.code_cache = code_cache  # module name -> marshalled code (phase 2 serves only these)
        self.rt_key = rt_key
        self.compiled_here = 0
        self.served: dict[str, Found] = {}
        self.lazy: list[str] = []
        self.lazy_sent: set[str] = set()
        self.answer = b""
        self.error: str | None = None
        self.logs: list[tuple[str, str]] = []

    # -- the protocol --
    def ask(self, query: bytes) -> bytes:
        if query == b"?boot":
            return BOOT_SCRIPT.read_bytes()
        if query == b"?config":
            stats = os.environ.get("SPACETIME_PY_BUILD_STATS") == "1"
            return f"main={self.project.main}\nstats={int(stats)}\n".encode()
        if query == b"?sources":  # the user's own files, for the source lines of tracebacks (module_sdk/log.py)
            parts: list[bytes] = []
            for found in self.served.values():
                if found.user:
                    src = found.source()
                    parts += [found.origin.encode(), b"\0", str(len(src)).encode(), b"\0", src]
            return b"".join(parts)
        if query == b"?eager":
            names = [n for n in self.lazy if n not in self.lazy_sent and n not in self.served]
            self.lazy_sent.update(names)
            return ",".join(names).encode()
        if query.startswith(b"find:"):
            return self._find(query[5:].decode())
        if query.startswith(b"code:"):
            name, _, code = query[5:].partition(b"\0")
            self._store_code(name.decode(), code)
            return b""
        if query.startswith(b"stats:"):  # SPACETIME_PY_BUILD_STATS=1: the boot's heap report, for debugging
            sys.stderr.write(query[6:].decode("utf-8", "replace") + "\n")
            return b""
        if query.startswith(b"error:"):
            self.error = query[6:].decode("utf-8", "replace")
            return b""
        raise BuildError(f"unexpected build query {query[:40]!r}")

    def _code_path(self, found: Found, source: bytes, compiler: str) -> Path:
        """Keyed by the compiler too: code compiled here and inside wasm unmarshal to the same objects but are
        not the same bytes, and mixing them would make the output depend on the cache's history."""
        return cache_dir() / "code" / f"{digest(self.rt_key, compiler, found.origin, source)}.marshal"

    def _find(self, name: str) -> bytes:
        found = self.resolver.find(name)
        if found is None:
            return b""
        self.served[name] = found
        source = found.source()
        if found.user or is_sdk(name):  # stdlib lazy imports stay lazy
            self.lazy += [n for n in lazy_imports(found, source) if n not in self.lazy]
        code = self.code_cache.get(name)
        if code is None:
            for compiler in ("host", "wasm"):
                path = self._code_path(found, source, compiler)
                if path.is_file():
                    code = path.read_bytes()
                    break
                if compiler == "host":
                    code = _host_compile(found.origin, source)
                    if code is not None:
                        _write_atomic(path, code)
                        break
            if code is not None:
                self.code_cache[name] = code
        head = (b"p" if found.is_package else b"m") if code is not None else (b"P" if found.is_package else b"M")
        return head + found.origin.encode() + b"\0" + (code if code is not None else source)

    def _store_code(self, name: str, code: bytes) -> None:
        self.compiled_here += 1
        self.say(f"compiling Python inside the module: {self.compiled_here} modules ({name})")
        self.code_cache[name] = code
        found = self.served[name]
        _write_atomic(self._code_path(found, found.source(), "wasm"), code)

    # -- wasm imports used while building --
    def imports(self) -> dict[tuple[str, str], Callable]:
        def sink_write(caller, sink, ptr, len_ptr):
            mem = caller["memory"]
            n = struct.unpack("<I", mem.read(caller, len_ptr, len_ptr + 4))[0]
            if sink & 0xFFFFFFFF != ASK_SINK:
                raise BuildError(f"bytes_sink_write({sink}) while building")
            self.answer = self.ask(bytes(mem.read(caller, ptr, ptr + n)))
            return 0

        def source_read(caller, source, ptr, len_ptr):
            if source & 0xFFFFFFFF != ANSWER_SOURCE:
                raise BuildError(f"bytes_source_read({source}) while building")
            mem = caller["memory"]
            cap = struct.unpack("<I", mem.read(caller, len_ptr, len_ptr + 4))[0]
            chunk, self.answer = self.answer[:cap], self.answer[cap:]
            mem.write(caller, chunk, ptr)
            mem.write(caller, struct.pack("<I", len(chunk)), len_ptr)
            return 0 if self.answer else -1

        def remaining(caller, source, out_ptr):
            caller["memory"].write(caller, struct.pack("<I", len(self.answer)), out_ptr)
            return 0

        def console_log(caller, level, tp, tl, fp, fl, line, mp, ml):
            mem = caller["memory"]
            msg = bytes(mem.read(caller, mp, mp + ml)).decode("utf-8", "replace")
            self.logs.append((LEVELS.get(level & 0xFF, "debug"), msg))

        return {
            ("spacetime_10.0", "bytes_sink_write"): sink_write,
            ("spacetime_10.0", "bytes_source_read"): source_read,
            ("spacetime_10.1", "bytes_source_remaining_length"): remaining,
            ("spacetime_10.0", "console_log"): console_log,
        }


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _host_compile(origin: str, source: bytes) -> bytes | None:
    """Marshalled code for `source` compiled by this interpreter when it is CPython 3.11, whose bytecode and
    marshal format the wasm interpreter shares (as for the runtime's frozen modules, build/runtime.py), else
    None (boot.py then compiles inside wasm and the build needs a second, clean pass).  Same flags as
    boot.py's `exec_module`.  A source that does not compile is left to boot.py, which reports the error."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        return None
    library = origin.startswith(("<stdlib>", "module_sdk/", "spacetime_core/"))
    try:
        code = compile(source, origin, "exec", dont_inherit=True, optimize=2 if library else 0)
    except (SyntaxError, ValueError):
        return None
    return marshal.dumps(code)


_snapshotters: dict[str, Snapshotter] = {}


def _snapshotter(runtime: Path) -> Snapshotter:
    key = str(runtime)
    if key not in _snapshotters:  # one per process: long-lived tools (dev, tests) build many modules
        _snapshotters[key] = Snapshotter(runtime.read_bytes())
    return _snapshotters[key]


def build(
    path: str | Path,
    output: str | Path | None = None,
    *,
    extra_paths: list[str | Path] = (),
    progress: Progress | None = None,
) -> BuildResult:
    """Build the module at `path` into a .wasm and return where it went."""
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    project = ModuleProject.locate(path)
    out = Path(output) if output else project.default_output()
    runtime = ensure_runtime(say)
    say("loading the runtime (compiled to machine code once per runtime)")
    snap = _snapshotter(runtime)
    rt_key = digest(runtime_key(), BOOT_SCRIPT.read_bytes())  # compiled code depends on both
    code_cache: dict[str, bytes] = {}
    phases = 0
    while True:
        phases += 1
        resolver = SourceResolver([project.root], [Path(p).resolve() for p in extra_paths])
        host = _BuildHost(project, resolver, code_cache, rt_key, say)
        say(f"importing {project.main} inside the module" + (" (clean pass)" if phases > 1 else ""))
        try:
            image = snap.run(host.imports(), "stdb_build_init", drop_exports=())
        except SnapshotError as e:
            raise BuildError(_render_failure(host, project, str(e))) from None
        if host.compiled_here == 0 or phases == 2:
            break
    for old, new in UNREACHABLE_IMPORTS.items():
        image = retarget_import(image, old, new)
    say("validating")
    validate_module(image, strict=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(image)
    return BuildResult(out, len(image), time.perf_counter() - t0, phases, sorted(host.served), host.logs)


def _render_failure(host: _BuildHost, project: ModuleProject, fallback: str) -> str:
    """Turn the in-wasm failure report into a traceback that points at the user's real files."""
    if host.error is None:
        logs = "\n".join(f"  [{lvl}] {msg}" for lvl, msg in host.logs)
        return f"building {project.main} failed: {fallback}" + (f"\n{logs}" if logs else "")
    frames, syntax, exc_type, message, import_name = [], None, "Error", "", ""
    report, _, exc_line = host.error.partition("\nexc\t")  # the exception comes last; its message may span lines
    for line in report.splitlines():
        kind, _, rest = line.partition("\t")
        parts = rest.split("\t")
        if kind == "frame" and len(parts) == 3:
            frames.append((parts[0], int(parts[1]), parts[2]))
        elif kind == "syntax" and len(parts) == 3:
            syntax = (parts[0], int(parts[1]), int(parts[2]))
        elif kind == "import":
            import_name = parts[0]
    if exc_line:
        exc_type, _, message = exc_line.partition("\t")
    out = [f"error: building module {project.main!r} failed"]
    user_frames = [f for f in frames if not f[0].startswith(("<", "module_sdk/", "spacetime_core/"))]
    if not user_frames and not syntax:
        # raised inside the SDK (a schema check at finalize()): point at the user's line the message names
        where = re.search(r"\(([^()\s]+\.py):(\d+)\)", message)
        if where and where.group(1) in host.resolver.by_origin:
            user_frames = [(where.group(1), int(where.group(2)), "<module>")]
        else:
            user_frames = frames[-1:]
    for origin, lineno, func in user_frames:
        path = host.resolver.by_origin.get(origin)
        out.append(f'  File "{path or origin}", line {lineno}, in {func}')
        src = _source_line(path, lineno)
        if src:
            out.append(f"    {src}")
    if syntax:
        origin, lineno, offset = syntax
        path = host.resolver.by_origin.get(origin, origin)
        out.append(f'  File "{path}", line {lineno}')
        src = _source_line(host.resolver.by_origin.get(origin), lineno, strip=False)
        if src is not None:
            out.append(f"    {src.rstrip()}")
            out.append("    " + " " * max(offset - 1, 0) + "^")
    if exc_type == "OverflowError" and "index-sized integer" in message:
        # 32-bit WebAssembly: a size of 2 GiB or more does not fit; to the user this is running out of memory
        exc_type, message = "MemoryError", ("cannot allocate 2 GiB or more in one object: a module is 32-bit "
                                            f"WebAssembly with at most 4 GiB of memory in all ({message})")
    out.append(f"{exc_type}: {_trim(message)}")
    out.extend(_import_hints(host, project, exc_type, import_name, frames))
    if exc_type in ("FileNotFoundError", "PermissionError", "IsADirectoryError", "NotADirectoryError"):
        out.append("hint: a module is WebAssembly without a filesystem, when it is built and when it runs: put the "
                   "data in your Python source (e.g. CONFIG = {...} in a .py file the module imports)")
    return "\n".join(out)


def _trim(message: str, lines: int = 8) -> str:
    """A message of at most `lines` non-blank lines (some packages explain a failed import in 30 lines)."""
    kept = [ln for ln in message.strip("\n").splitlines() if ln.strip()]
    return "\n".join(kept[:lines] + (["  [...]"] if len(kept) > lines else []))


def _import_hints(host: _BuildHost, project: ModuleProject, exc_type: str, import_name: str,
                  frames: list[tuple[str, int, str]]) -> list[str]:
    """Why an import failed: a compiled extension (named, even when a package re-raised its own ImportError),
    a standard-library C module the runtime leaves out (and who needs it), or a module not found anywhere."""
    if exc_type not in ("ImportError", "ModuleNotFoundError"):
        return []
    ext = host.resolver.unsupported
    # the extension itself, or (a package re-raising its own ImportError) the last extension the import sought
    culprit = ext.get(import_name) or (list(ext.values())[-1] if ext and not import_name else None)
    if culprit is not None:
        return [f"hint: {culprit.name!r} is a compiled extension ({culprit.path}): a SpacetimeDB module is "
                "WebAssembly with no loader for native code, so only pure-Python packages can run inside it"]
    if exc_type != "ModuleNotFoundError" or not import_name:
        return []
    top = import_name.split(".")[0]
    if top in sys.stdlib_module_names:
        needed_by = [o for o, _, _ in frames if not o.startswith("<frozen")]
        who = ""
        if needed_by:
            path = host.resolver.by_origin.get(needed_by[-1])
            if path is not None and path.is_relative_to(host.resolver._stdlib):  # not a path in our cache
                who = f"; the standard library's {path.relative_to(host.resolver._stdlib).as_posix()} imports it"
            else:
                who = f"; {path or needed_by[-1]} imports it"
        return [f"hint: {top!r} is a standard-library C module that the module runtime does not include{who}. "
                "Code that needs it cannot run inside a module; installing packages will not help"]
    return [f"hint: {import_name!r} was not found in {project.root}, the --path folders, the module runtime's "
            "standard library or this environment's site-packages; install it (pure Python) or vendor it"]


def _source_line(path: Path | None, lineno: int, strip: bool = True) -> str | None:
    if path is None or lineno <= 0:
        return None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    if lineno > len(lines):
        return None
    return lines[lineno - 1].strip() if strip else lines[lineno - 1]
