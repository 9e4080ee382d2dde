"""The databases of one server, kept in a data dir:

    <data_dir>/id_ecdsa, id_ecdsa.pub     the server's signing key (auth.py)
    <data_dir>/registry.json              every database: owner, names, lock flag
    <data_dir>/databases/<identity hex>/  one `harness.host.Database` (module.wasm, database.json, commitlog)
    <data_dir>/logs/<identity hex>.ndjson the module's log lines (what `GET .../logs` serves), kept across restarts

A restart reopens every database from its commit log.  Publishing validates the module completely before an
existing database is touched: the bytes (`validate_module`), then the module def and instance (a scratch
`Database`), then the migration itself.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import host
from harness.host import Database, LogRecord, ModuleLoadError
from harness.host.logs import LogFile
from harness.limits import LIMITS
from module_sdk.build.validate import InvalidModule, validate_module
from spacetime_core.sats import Identity

log = logging.getLogger("spacetime-py.server")

NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
IDENTITY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
LOG_LEVELS = {0: "Error", 1: "Warn", 2: "Info", 3: "Debug", 4: "Trace", 101: "Panic"}
MAX_LOG_LINES_IN_MEMORY = 100_000
SYSTEM = "__spacetimedb__"



def _check_rls(db) -> None:
    """Every client visibility filter must be a valid query over the module's tables: upstream refuses to publish
    a module otherwise ("failed to create row-level security"), so a typo must not pass here and fail there."""
    from harness.sql.errors import SqlError
    from harness.sql.subscription import compile_subscription

    for sql in db.mdef.row_level_security or ():
        try:
            compile_subscription(db, sql, db.owner, owner=True)
        except SqlError as e:
            raise RegistryError(400, f"Failed to create or update the database: failed to create row-level "
                                     f"security: `{sql}`: {e}") from None

class RegistryError(Exception):
    """A refused operation: `status` is the HTTP status, `body` a text message or a JSON-able object."""

    def __init__(self, status: int, body: str | dict):
        super().__init__(body if isinstance(body, str) else json.dumps(body))
        self.status = status
        self.body = body


def parse_identity(s: str) -> Identity | None:
    return Identity.from_hex(s) if IDENTITY_RE.match(s) else None


MAX_NAME_CHARS = 64  # upstream's limit on one domain-name segment (MAX_CHARS_PART)


def name_error(name: str) -> str | None:
    """Why `name` is not a database name (upstream's DatabaseName rules: `^[a-z0-9]+(-[a-z0-9]+)*$`, not an
    identity, at most 64 characters), or None when it is one."""
    if not name:
        return "database names cannot be empty"
    if IDENTITY_RE.match(name):
        return "database names cannot be identities"
    if len(name) > MAX_NAME_CHARS:
        return f"database names must be at most {MAX_NAME_CHARS} characters"
    if not NAME_RE.match(name):
        if "-" in name and NAME_RE.match(name.replace("-", "a")):
            return "invalid hyphen in database name"
        return "invalid characters in database name"
    return None


def check_name(name: str) -> None:
    err = name_error(name)
    if err is not None:
        shown = name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS] + "..."
        raise RegistryError(400, f"`{shown}` is not a valid database name: {err} (use lowercase letters, digits "
                                 "and single hyphens, starting and ending with a letter or digit)")


def _creation_log(logs: LogStore, db, init_lines: list) -> None:
    """What upstream logs when it creates a database: each table (sorted by name), each view, each row-level
    security filter, then the `init` reducer's own lines, then "Database initialized"."""
    for t in sorted(db.mdef.tables, key=lambda t: t.name):
        logs.system(f"Creating table `{t.name}`")
    for v in sorted(getattr(db.mdef, "views", ()), key=lambda v: v.name):
        logs.system(f"Creating table for view `{v.name}`")
    for sql in db.mdef.row_level_security:
        logs.system(f"Creating row level security `{sql}`")
    if db.mdef.lifecycle("init") is not None:
        logs.system("Invoking `init` reducer")
    for rec in init_lines:
        logs.record(rec)
    logs.system("Database initialized")


class LogStore:
    """A database's log lines (NDJSON text as `GET /logs` sends it), appended to a file and fanned out."""

    def __init__(self, path: Path):
        self.path = path
        self.lines: deque[str] = deque()
        self._bytes = 0  # UTF-8 size of self.lines, kept under LIMITS.log_memory_bytes
        self._listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._file = LogFile(path)
        for line in self._file.tail(LIMITS.log_memory_bytes):
            self._keep(line)

    def record(self, rec: LogRecord) -> None:
        line = {"level": LOG_LEVELS.get(rec.level, LOG_LEVELS.get(rec.level & 0xFF, "Debug")), "ts": rec.ts_us}
        if rec.target is not None:
            line["target"] = rec.target
        if rec.filename is not None:
            line["filename"] = rec.filename
        if rec.line is not None:
            line["line_number"] = rec.line
        if rec.function is not None:
            line["function"] = rec.function
        line["message"] = rec.message
        self.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")))

    def system(self, message: str, level: int = 2) -> None:
        self.append(json.dumps({"level": LOG_LEVELS[level], "ts": int(time.time() * 1e6), "target": SYSTEM,
                                "filename": SYSTEM, "function": SYSTEM, "message": message},
                               ensure_ascii=False, separators=(",", ":")))

    def _keep(self, line: str) -> None:
        """Remember `line` in memory, forgetting the oldest lines beyond the line and byte budgets."""
        self.lines.append(line)
        self._bytes += len(line) + 1
        while self.lines and (len(self.lines) > MAX_LOG_LINES_IN_MEMORY or self._bytes > LIMITS.log_memory_bytes):
            self._bytes -= len(self.lines.popleft()) + 1

    def append(self, line: str) -> None:
        with self._lock:
            self._keep(line)
            if not self._file.closed:
                self._file.write(line)
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(line)
            except Exception:  # a listener must never break a reducer
                log.exception("log listener failed")

    def tail(self, n: int | None) -> list[str]:
        with self._lock:
            lines = list(self.lines)
        return lines if n is None else lines[-n:] if n > 0 else []

    def listen(self, fn: Callable[[str], None], tail: int | None = None) -> list[str]:
        """Register `fn` for new lines; returns the last `tail` lines atomically with the registration."""
        with self._lock:
            self._listeners.append(fn)
            lines = list(self.lines)
            return lines if tail is None else lines[-tail:] if tail > 0 else []

    def unlisten(self, fn: Callable[[str], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def remove(self) -> None:
        """Close and delete the log files (the database is deleted)."""
        with self._lock:
            self._file.remove()


@dataclass
class DatabaseEntry:
    identity: Identity
    owner: Identity
    names: list[str]
    logs: LogStore
    created_us: int
    locked: bool = False
    db: Database | None = None
    error: str | None = None  # set when the database failed to load at startup
    extra: dict = field(default_factory=dict)
    # held while this database is updated, reset or deleted (never by lookups, never on the event loop)
    op_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def hex(self) -> str:
        return self.identity.to_hex()

    def database(self) -> Database:
        if self.db is None:
            raise RegistryError(503, f"database {self.hex} is not available: {self.error or 'not loaded'}")
        return self.db


@dataclass
class PublishResult:
    identity: Identity
    name: str | None
    op: str  # "created" | "updated"

    def to_json(self) -> dict:
        return {"Success": {"domain": self.name, "database_identity": self.identity.to_hex(), "op": self.op}}


class Registry:
    def __init__(self, data_dir: str | Path, *, mint_identity: Callable[[], Identity],
                 durability: str = "group", start_schedulers: bool = True):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "databases").mkdir(exist_ok=True)
        self.mint_identity = mint_identity
        self.durability = durability
        self.start_schedulers = start_schedulers
        self.entries: dict[str, DatabaseEntry] = {}  # identity hex -> entry
        self.names: dict[str, str] = {}  # name -> identity hex
        self._lock = threading.RLock()  # the maps and registry.json only: held briefly, never around module code
        self._key_locks: dict[str, list] = {}  # name/identity being published -> [Lock, holders]
        self._listeners: list[Callable[[str, DatabaseEntry], None]] = []
        self._closed = False
        self._load()

    # ------------------------------------------------------------------ persistence

    @property
    def _file(self) -> Path:
        return self.data_dir / "registry.json"

    def db_dir(self, identity: Identity) -> Path:
        return self.data_dir / "databases" / identity.to_hex()

    def _save(self) -> None:
        data = {"databases": {h: {"owner": e.owner.to_hex(), "names": e.names, "locked": e.locked,
                                  "created_us": e.created_us} for h, e in self.entries.items()}}
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self._file)

    def _load(self) -> None:
        if not self._file.is_file():
            return
        data = json.loads(self._file.read_text())
        for h, d in data.get("databases", {}).items():
            identity = Identity.from_hex(h)
            entry = DatabaseEntry(identity, Identity.from_hex(d["owner"]), list(d.get("names", [])),
                                  LogStore(self.data_dir / "logs" / f"{h}.ndjson"), d.get("created_us", 0),
                                  d.get("locked", False))
            try:
                entry.db = Database.open(self.db_dir(identity), on_log=entry.logs.record,
                                         durability=self.durability)
                if self.start_schedulers:
                    entry.db.start_scheduler()
            except Exception as e:  # keep serving the others; this one answers 503
                entry.error = f"{type(e).__name__}: {e}"
                log.error("database %s failed to load: %s", h, entry.error)
            self.entries[h] = entry
            for n in entry.names:
                self.names[n] = h

    # ------------------------------------------------------------------ events

    def subscribe(self, fn: Callable[[str, DatabaseEntry], None]) -> None:
        """`fn(event, entry)` after "created", "updated", "replaced" (new Database object), "deleted"."""
        self._listeners.append(fn)

    def _emit(self, event: str, entry: DatabaseEntry) -> None:
        for fn in list(self._listeners):
            try:
                fn(event, entry)
            except Exception:
                log.exception("registry listener failed")

    # ------------------------------------------------------------------ lookup

    def resolve(self, name_or_identity: str) -> Identity:
        """Name or identity -> identity (an identity is returned as is, existing or not)."""
        ident = parse_identity(name_or_identity)
        if ident is not None:
            return ident
        check_name(name_or_identity)
        with self._lock:
            h = self.names.get(name_or_identity)
        if h is None:
            raise RegistryError(404, f"`{name_or_identity}` not found")
        return Identity.from_hex(h)

    def lookup(self, name_or_identity: str) -> DatabaseEntry:
        identity = self.resolve(name_or_identity)
        with self._lock:
            entry = self.entries.get(identity.to_hex())
        if entry is None:
            raise RegistryError(404, "No such database.")
        return entry

    def get(self, identity: Identity) -> DatabaseEntry | None:
        with self._lock:
            return self.entries.get(identity.to_hex())

    def databases_of(self, owner: Identity) -> list[Identity]:
        with self._lock:
            return [e.identity for e in self.entries.values() if e.owner == owner]

    # ------------------------------------------------------------------ publish

    def publish(self, wasm: bytes, caller: Identity, name_or_identity: str | None = None, *,
                clear: bool = False, host_type: str = "Wasm") -> PublishResult:
        """Create or update a database.  Compiling, describing and migrating happen under a lock of the name
        (or identity) being published and of the database being changed, never under the registry's map lock,
        so lookups of every database stay instant while a slow or hostile module is published."""
        if host_type != "Wasm":
            raise RegistryError(400, f"host_type {host_type} is not supported by this host (only Wasm)")
        check_module_bytes(wasm)
        if name_or_identity is None:
            if clear:
                raise RegistryError(400, "`clear` requires a database name or identity")
            return self._create(wasm, caller, self.mint_identity(), None)
        name = None
        identity = parse_identity(name_or_identity)
        if identity is None:
            check_name(name_or_identity)
            name = name_or_identity
        with self._key_lock(name or identity.to_hex()):
            with self._lock:
                if name is not None:
                    h = self.names.get(name)
                    identity = Identity.from_hex(h) if h else None
                entry = self.get(identity) if identity is not None else None
            if entry is None:
                return self._create(wasm, caller, identity or self.mint_identity(), name)
            with entry.op_lock:
                if entry.owner != caller:
                    if name is not None:
                        raise RegistryError(401, {"PermissionDenied": {"name": name}})
                    raise RegistryError(403, f"Identity {caller.to_hex()} is not authorized to update database "
                                             f"{entry.hex}")
                if self.get(entry.identity) is not entry:
                    raise RegistryError(409, "the database was deleted while this publish was waiting")
                if clear:
                    self._reset(entry, wasm)
                else:
                    self._update(entry, wasm)
            return PublishResult(entry.identity, name, "updated")

    @contextmanager
    def _key_lock(self, key: str):
        """A lock per name/identity being published, dropped once nobody holds or waits for it."""
        with self._lock:
            slot = self._key_locks.setdefault(key, [threading.Lock(), 0])
            slot[1] += 1
        try:
            with slot[0]:
                yield
        finally:
            with self._lock:
                slot[1] -= 1
                if slot[1] == 0:
                    self._key_locks.pop(key, None)

    def _create(self, wasm: bytes, owner: Identity, identity: Identity, name: str | None) -> PublishResult:
        h = identity.to_hex()
        d = self.db_dir(identity)
        shutil.rmtree(d, ignore_errors=True)
        log_path = self.data_dir / "logs" / f"{h}.ndjson"
        logs = LogStore(log_path)

        def discard() -> None:
            logs.remove()
            shutil.rmtree(d, ignore_errors=True)

        held: list = []  # the init reducer's lines, written after upstream's "Creating table" lines
        sink = [held.append]
        try:
            db = Database.create(wasm, owner=owner, identity=identity, data_dir=d, on_log=lambda r: sink[0](r),
                                 durability=self.durability)
        except ModuleLoadError as e:
            discard()
            raise RegistryError(400, f"Failed to create or update the database: {e}") from None
        except BaseException:
            discard()
            raise
        try:
            _check_rls(db)
        except RegistryError:
            db.close()
            discard()
            raise
        entry = DatabaseEntry(identity, owner, [name] if name else [], logs, int(time.time() * 1e6), db=db)
        with self._lock:
            taken = h in self.entries or (name is not None and name in self.names)
            if not taken:
                self.entries[h] = entry
                if name:
                    self.names[name] = h
                self._save()
        if taken:  # another request claimed the name or identity meanwhile (e.g. POST /names)
            db.close()
            discard()
            raise RegistryError(409, f"`{name or h}` was claimed by another database while this one was created")
        _creation_log(logs, db, held)
        sink[0] = logs.record
        if self.start_schedulers:
            db.start_scheduler()
        self._emit("created", entry)
        return PublishResult(identity, name, "created")

    def _check_loads(self, entry: DatabaseEntry, wasm: bytes) -> None:
        """Instantiate and describe the new module on a scratch database (no data, no init)."""
        try:
            scratch = Database(wasm, identity=entry.identity, owner=entry.owner)
        except ModuleLoadError as e:
            raise RegistryError(400, f"Failed to create or update the database: {e}") from None
        try:
            if scratch.mdef.row_level_security:
                scratch._install_catalog(scratch._build_catalog(scratch.mdef))
                _check_rls(scratch)
        finally:
            scratch.close()

    def _update(self, entry: DatabaseEntry, wasm: bytes) -> None:
        db = entry.database()
        self._check_loads(entry, wasm)
        if hasattr(db, "update_module"):
            migration_error = getattr(host, "MigrationError", ())
            try:
                db.update_module(wasm)
            except ModuleLoadError as e:
                raise RegistryError(400, f"Failed to create or update the database: {e}") from None
            except Exception as e:
                if migration_error and isinstance(e, migration_error):
                    raise RegistryError(400, f"Database update rejected: {e}") from None
                raise
        elif bytes(wasm) != db.wasm:
            raise RegistryError(400, "Database update rejected: this host cannot migrate a database to a new "
                                     "module yet; publish with clear (spacetime-py publish --delete-data) to "
                                     "replace it and delete its data")
        entry.logs.system(f"Database {entry.hex} updated")
        self._emit("updated", entry)

    def _reset(self, entry: DatabaseEntry, wasm: bytes) -> None:
        """Wipe the data and install `wasm`: built beside the old database, swapped in only once it works."""
        if entry.locked:
            raise RegistryError(403, "Database is locked: unlock it before clearing it")
        self._check_loads(entry, wasm)
        final = self.db_dir(entry.identity)
        fresh = final.with_name(final.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        try:
            new = Database.create(wasm, owner=entry.owner, identity=entry.identity, data_dir=fresh,
                                  on_log=entry.logs.record, durability=self.durability)
        except ModuleLoadError as e:
            shutil.rmtree(fresh, ignore_errors=True)
            raise RegistryError(400, f"Failed to create or update the database: {e}") from None
        new.close()
        if entry.db is not None:
            entry.db.close()
            entry.db = None
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        fresh.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        entry.db = Database.open(final, on_log=entry.logs.record, durability=self.durability)
        entry.error = None
        if self.start_schedulers:
            entry.db.start_scheduler()
        entry.logs.system(f"Database {entry.hex} cleared and replaced")
        self._emit("replaced", entry)

    def reset(self, entry: DatabaseEntry, caller: Identity, wasm: bytes | None = None) -> None:
        self._require_owner(entry, caller, "reset")
        if wasm is not None:
            check_module_bytes(wasm)
        with entry.op_lock:
            if self.get(entry.identity) is not entry:
                raise RegistryError(404, "No such database.")
            self._reset(entry, wasm if wasm is not None else entry.database().wasm)

    # ------------------------------------------------------------------ delete, names, lock

    def _require_owner(self, entry: DatabaseEntry, caller: Identity, what: str) -> None:
        if entry.owner != caller:
            raise RegistryError(403, f"Identity {caller.to_hex()} is not authorized to {what} database {entry.hex}")

    def delete(self, entry: DatabaseEntry, caller: Identity) -> None:
        self._require_owner(entry, caller, "delete")
        with entry.op_lock:
            with self._lock:
                if entry.locked:
                    raise RegistryError(403, "Database is locked: unlock it before deleting it")
                if self.entries.get(entry.hex) is not entry:
                    return  # deleted meanwhile
                self.entries.pop(entry.hex, None)
                for n in entry.names:
                    self.names.pop(n, None)
                self._save()
            if entry.db is not None:
                entry.db.close()
                entry.db = None
            entry.logs.remove()
            shutil.rmtree(self.db_dir(entry.identity), ignore_errors=True)
        self._emit("deleted", entry)

    def set_lock(self, entry: DatabaseEntry, caller: Identity, locked: bool) -> None:
        with self._lock:
            self._require_owner(entry, caller, "lock or unlock")
            entry.locked = locked
            self._save()

    def add_name(self, entry: DatabaseEntry, caller: Identity, name: str) -> tuple[int, dict]:
        """`POST /names`: (status, InsertDomainResult)."""
        if name_error(name) is not None:
            return 400, {"OtherError": f"`{name[:MAX_NAME_CHARS]}` is not a valid database name: {name_error(name)}"}
        with self._lock:
            if entry.owner != caller:
                return 401, {"PermissionDenied": {"domain": name}}
            h = self.names.get(name)
            if h is not None and h != entry.hex:
                return 401, {"PermissionDenied": {"domain": name}}
            if name not in entry.names:
                entry.names.append(name)
            self.names[name] = entry.hex
            self._save()
        return 200, {"Success": {"domain": name, "database_identity": entry.hex}}

    def set_names(self, entry: DatabaseEntry, caller: Identity, names: list[str]) -> tuple[int, str | dict]:
        """`PUT /names`: (status, SetDomainsResult)."""
        with self._lock:
            if entry.owner != caller:
                return 401, {"NotYourDatabase": {"database": entry.hex}}
            for n in names:
                if not isinstance(n, str) or name_error(n) is not None:
                    why = name_error(n) if isinstance(n, str) else "not a string"
                    return 400, {"OtherError": f"`{str(n)[:MAX_NAME_CHARS]}` is not a valid database name: {why}"}
                h = self.names.get(n)
                if h is not None and h != entry.hex:
                    return 400, {"OtherError": f"the name `{n}` is already in use"}
            for n in entry.names:
                self.names.pop(n, None)
            entry.names = list(dict.fromkeys(names))
            for n in entry.names:
                self.names[n] = entry.hex
            self._save()
        return 200, "Success"

    # ------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Stop schedulers and close every database (their commit logs are flushed and closed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            entries = list(self.entries.values())
        for e in entries:
            if e.db is not None:
                try:
                    e.db.close()
                except Exception:
                    log.exception("closing database %s failed", e.hex)
            e.logs.close()


def check_module_bytes(wasm: bytes) -> None:
    """Refuse what is not a SpacetimeDB wasm module, with a message that says what it is instead."""
    head = bytes(wasm[:64]).lstrip()
    if not wasm:
        raise RegistryError(400, "Failed to create or update the database: the module is empty")
    if head.startswith(b"(module") or head.startswith(b"(;") or head.startswith(b";;"):
        raise RegistryError(400, "Failed to create or update the database: this is WebAssembly text (.wat); "
                                 "publish the binary .wasm")
    try:
        validate_module(bytes(wasm))
    except InvalidModule as e:
        raise RegistryError(400, f"Failed to create or update the database: invalid module: {e}") from None
