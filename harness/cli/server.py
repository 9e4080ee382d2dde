"""`spacetime-py` server commands: start a server, and the `spacetime`-like verbs that talk to one over HTTP
(publish, call, sql, logs, describe, delete, dev).

Server selection: `--server URL` (or $SPACETIME_PY_SERVER), default http://127.0.0.1:3000.  Tokens: as the
`spacetime` CLI does, the first request to a server without a saved token asks it for one
(`POST /v1/identity`) and saves it in the config file ($SPACETIME_PY_CONFIG, default
~/.config/spacetime-py/cli.json), one token per server.  `--anonymous` sends none.

Imports stay light (click only): aiohttp and the host load when a command runs.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path

import click

DEFAULT_SERVER = "http://127.0.0.1:3000"


def config_path() -> Path:
    env = os.environ.get("SPACETIME_PY_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "spacetime-py" / "cli.json"


def load_config() -> dict:
    p = config_path()
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def save_config(cfg: dict) -> None:
    p = config_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent=1)
    tmp.replace(p)


def _fail(msg: str) -> None:
    click.secho(f"error: {msg}", fg="red", err=True)
    sys.exit(1)


def _server_option(f):
    f = click.option("-s", "--server", envvar="SPACETIME_PY_SERVER", default=None,
                     help=f"Server URL (default: the configured default, else {DEFAULT_SERVER}).")(f)
    f = click.option("--anonymous", is_flag=True, help="Send no token (the server mints a throwaway identity).")(f)
    return f


def api_for(server: str | None, anonymous: bool = False, fresh: bool = False):
    """An HTTP client for the server, with the saved token (getting and saving one first if needed, or always with
    `fresh`: a server just started on a new data dir).  A saved token the server cannot verify (401 "Invalid
    token": a server started with a new data dir has a new key) is replaced once."""
    from client_sdk.http import HttpError, SpacetimeHttp, normalize_server

    cfg = load_config()
    url = normalize_server(server or cfg.get("default_server") or DEFAULT_SERVER)
    if anonymous:
        return SpacetimeHttp(url)
    api = _cli_http()(url)
    tokens = cfg.setdefault("tokens", {})

    def new_token() -> tuple[str, str]:
        try:
            identity, token = api.create_identity()
        except HttpError as e:
            _fail(f"{url} did not give this CLI an identity: {e.status} {e.text.strip()}")
        except OSError as e:
            _unreachable(url, e)
        tokens[url] = token
        save_config(cfg)
        return identity, token

    def renew() -> str:
        identity, token = new_token()
        click.secho(f"note: {url} does not accept the token saved for it (a server started with a new data dir "
                    f"has a new key); using a new identity {identity}", fg="yellow", err=True)
        return token

    token = None if fresh else tokens.get(url)
    if token is None:
        _identity, token = new_token()
    else:
        api.renew = renew
    api.token = token
    return api


_CLI_HTTP = []


def _cli_http():
    """The CLI's HTTP client class (made on first use: this module imports only click when it loads)."""
    if _CLI_HTTP:
        return _CLI_HTTP[0]
    from client_sdk.http import HttpError, SpacetimeHttp

    class CliHttp(SpacetimeHttp):
        """The CLI's client: a request the server refuses with 401 "Invalid token" (the saved token is not valid
        there) gets a new token from `renew` and is sent once more."""

        renew = None

        def request(self, method: str, path: str, **kw):
            try:
                return super().request(method, path, **kw)
            except HttpError as e:
                # only a token the server cannot verify (both servers: "Invalid token: ..."); a 401 for a
                # database owned by someone else (PermissionDenied) keeps the identity that owns the others
                if e.status != 401 or not e.text.lower().startswith("invalid token") or self.renew is None \
                        or not kw.get("auth", True):
                    raise
                renew, self.renew = self.renew, None
                self.token = renew()
                return super().request(method, path, **kw)

    _CLI_HTTP.append(CliHttp)
    return CliHttp


def _http_call(fn, *args, **kw):
    from client_sdk.http import HttpError

    try:
        return fn(*args, **kw)
    except (HttpError, OSError) as e:
        _http_fail(e, getattr(getattr(fn, "__self__", None), "server", None))


def _http_fail(e: Exception, url: str | None = None) -> None:
    from client_sdk.http import HttpError

    if isinstance(e, HttpError):
        _fail(f"{e.status}: {e.text.strip() or 'request failed'}")
    _unreachable(url or "the server", e)


def _unreachable(url: str, e: Exception) -> None:
    reason = getattr(e, "reason", None) or e  # urllib's URLError wraps the socket error
    _fail(f"cannot reach {url}: {reason}; is a server running there? `spacetime-py start` starts one, "
          "--server URL (or SPACETIME_PY_SERVER) picks another")


# ------------------------------------------------------------------------------------------- start

@click.command()
@click.option("-l", "--listen-addr", default="127.0.0.1:3000", show_default=True, help="HOST:PORT to listen on.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where databases, logs and the server key live (default ~/.local/share/spacetime-py).")
@click.option("--limit", "limits", multiple=True, metavar="NAME=VALUE",
              help="Change a limit, e.g. --limit body_bytes=4m (repeatable; see docs/limits.md).")
@click.option("--durability", type=click.Choice(["group", "every", "none"]), default="group", show_default=True,
              help="When commits are fsynced: group commit, every transaction, or never (benchmarks only).")
def start(listen_addr: str, data_dir: Path | None, limits: tuple[str, ...], durability: str) -> None:
    """Run a SpacetimeDB-compatible server (HTTP API + WebSocket) until Ctrl-C."""
    from harness.limits import set_limit
    from harness.server.app import serve

    for item in limits:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError(f"expected NAME=VALUE, got {item!r}")
            set_limit(name, value)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--limit") from None
    host, port = _split_addr(listen_addr)
    _check_can_listen(host, port)
    serve(data_dir, host, port, durability=durability)


def _check_can_listen(host: str, port: int) -> None:
    """Fail with one line (not the event loop's traceback) when the address is taken or not ours to bind."""
    import socket

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as e:
        _fail(f"cannot listen on {host}:{port}: {e}")
    for family, kind, proto, _name, addr in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
            try:
                s.bind(addr)
            except OSError as e:
                hint = ("; another server is running there (stop it, or choose another port with --listen-addr)"
                        if e.errno == errno.EADDRINUSE else "")
                _fail(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}")


def _split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {addr!r}", param_hint="--listen-addr")
    return host.strip("[]") or "0.0.0.0", int(port)


# ------------------------------------------------------------------------------------------- publish

def _build(path: Path | None) -> bytes:
    from harness.cli import build_progress
    from module_sdk.build import BuildError
    from module_sdk.build import build as build_module

    try:
        with build_progress() as say:
            result = build_module(path or Path("."), progress=say)
    except BuildError as e:
        hint = "\n(publish builds the module in the current folder; name another with -p PATH, or a .wasm with -b)"
        click.echo(str(e) + (hint if path is None else ""), err=True)
        sys.exit(1)
    return result.output.read_bytes()


@click.command()
@click.argument("name", required=False)
@click.option("-p", "--project-path", "project", type=click.Path(exists=True, path_type=Path), default=None,
              help="Module to build and publish (a .py file or a package folder; default: .).")
@click.option("-b", "--bin-path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Publish this .wasm instead of building.")
@click.option("-c", "--delete-data", "--clear-database", "clear", is_flag=True,
              help="Delete the database's data and replace its module (when it exists).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@_server_option
def publish(name: str | None, project: Path | None, bin_path: Path | None, clear: bool, yes: bool,
            server: str | None, anonymous: bool) -> None:
    """Build a module and publish it as database NAME (created or updated); without NAME an unnamed database."""
    if clear and not yes and sys.stdin.isatty():
        click.confirm(f"This deletes all data of database {name}. Continue?", abort=True)
    wasm = bin_path.read_bytes() if bin_path else _build(project)
    api = api_for(server, anonymous)
    from client_sdk.http import HttpError

    try:
        res = api.publish(wasm, name, clear=clear)
    except HttpError as e:
        text = e.text.strip()
        if e.status == 400 and "update rejected" in text and "--delete-data" not in text:  # a real server's answer
            if "default value" in text:
                text += "\n(a column added to a table with data needs a default: `label: str = \"\"` or default(...))"
            text += f"\n(to delete the data and publish anyway: spacetime-py publish {name} --delete-data ...)"
        _fail(f"{e.status}: {text}")
    except OSError as e:
        _http_fail(e, api.server)
    what = f"{name} ({res['database_identity']})" if name else res["database_identity"]
    click.echo(f"{'Created new' if res['op'] == 'created' else 'Updated'} database {what}")


# ------------------------------------------------------------------------------------------- call

def _schema_v10(api, db: str) -> dict:
    return _http_call(api.schema, db, 10)


def _sections(schema: dict) -> dict:
    if "sections" in schema:
        out = {}
        for s in schema["sections"]:
            (k, v), = s.items()
            out.setdefault(k, v)
        return out
    return {"Typespace": schema.get("typespace"), "Tables": schema.get("tables", []),
            "Reducers": schema.get("reducers", [])}


def _functions(schema: dict) -> dict[str, dict]:
    """Reducers and procedures by the name a client calls them with: the canonical name (V10: an explicit name,
    else the source name under the module's case-conversion policy, snake_case by default; V9: the name)."""
    from spacetime_core.names import canonical_snake

    sec = _sections(schema)
    explicit = {e["Function"]["source_name"]: e["Function"]["canonical_name"]
                for e in (sec.get("ExplicitNames") or {}).get("entries", []) if "Function" in e}
    keep = "None" in (sec.get("CaseConversionPolicy") or {})
    out = {}
    for r in (sec.get("Reducers") or []) + (sec.get("Procedures") or []):
        if "name" in r:
            out[r["name"]] = r
            continue
        src = r["source_name"]
        out[explicit.get(src) or (src if keep else canonical_snake(src))] = r
    return out


def _params(schema: dict, function: str) -> list | None:
    r = _functions(schema).get(function)
    return None if r is None else r["params"]["elements"]


def did_you_mean(name: str, names: list[str], what: str = "reducer or procedure") -> str:
    """`no reducer or procedure named 'ad'; did you mean 'add'?` (or the list of names when none is close)."""
    import difflib

    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    elif names:
        hint = "the module has: " + ", ".join(sorted(names))
    else:
        hint = f"the module has no {what}s"
    return f"no {what} named {name!r}; {hint}"


def split_call(text: str) -> list[str]:
    """`'add 1 "x" {"team": 3}'` -> `['add', '1', '"x"', '{"team": 3}']`: whitespace-separated words, where a word
    that starts a JSON string, array or object runs to that value's end (so JSON may contain spaces). Each word
    after the name is one argument, exactly as `spacetime-py call DB NAME ARG...` takes them."""
    dec = json.JSONDecoder()
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] in '"[{':
            try:
                _, end = dec.raw_decode(text, i)
                out.append(text[i:end])
                i = end
                continue
            except ValueError:
                pass
        j = i
        while j < n and not text[j].isspace():
            j += 1
        out.append(text[i:j])
        i = j
    return out


def parse_cli_args(params, words: list[str], typespace, function: str, names: dict[int, str] | None = None) -> tuple:
    """Command-line words -> the Python values of `params` (a ProductType): each word one JSON value in the
    SATS-JSON input form (sums `{"Variant": payload}` or a bare variant name, options `{"some": x}` or null);
    bare text for a String parameter. Raises ValueError with a message for the user."""
    from spacetime_core.sats.satn import format_type
    from spacetime_core.sats.satsjson import SatsJsonError, value_from_json
    from spacetime_core.sats.types import TAG_REF, TAG_STRING

    sig = ", ".join(f"{n}: {format_type(t, names=names)}" for n, t in params.elements)
    if len(words) != len(params.elements):
        raise ValueError(f"{function}({sig}) takes {len(params.elements)} argument"
                         f"{'s' if len(params.elements) != 1 else ''}, got {len(words)}; give each argument as "
                         "its own JSON value, e.g. 1 \"text\" '{\"Variant\": 2}'")
    values = []
    for (pname, ptype), word in zip(params.elements, words):
        resolved = typespace.resolve(ptype) if ptype.tag == TAG_REF else ptype
        if resolved.tag == TAG_STRING and not word.startswith('"'):  # bare text is the string itself
            obj = word
        else:
            try:
                obj = json.loads(word)
            except ValueError:
                obj = word  # a bare word: a variant name, or a mistake value_from_json will name
        try:
            values.append(value_from_json(ptype, obj, typespace, pname or ""))
        except (SatsJsonError, ValueError, TypeError) as e:
            raise ValueError(f"argument {pname!r} of {function}({sig}): {e}") from None
    return tuple(values)


def _cli_arg(raw: str, param_type: dict | None):
    """A command-line argument as JSON: strings need no quotes when the parameter is a String."""
    if param_type is not None and "String" in param_type:
        if raw.startswith('"'):
            try:
                v = json.loads(raw)
                if isinstance(v, str):
                    return v
            except ValueError:
                pass
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return _wrap_special(value, param_type)


def _wrap_special(value, param_type: dict | None):
    """`0x...` for an Identity (or a number for a Timestamp...) as the typed `{"__identity__": "0x..."}` form:
    a real server's JSON reader takes a special type only as its one-field product, not the bare value."""
    elements = (param_type or {}).get("Product", {}).get("elements") if isinstance(param_type, dict) else None
    if isinstance(value, (str, int)) and not isinstance(value, bool) and elements and len(elements) == 1:
        name = (elements[0].get("name") or {}).get("some", "")
        if name.startswith("__") and name.endswith("__"):
            return {name: value}
    return value


def _type_names(sec: dict) -> dict[int, str]:
    """Typespace ref -> the type's source name (`Mode`), from a schema's Types section."""
    names = {}
    for td in sec.get("Types") or []:
        sname = td.get("source_name") or td.get("name") or {}
        if isinstance(sname, dict):
            sname = sname.get("source_name") or sname.get("name")
        if isinstance(sname, str):
            names[td.get("ty")] = sname
    return names


def _invalid_arguments(schema: dict, function: str, words: list[str], server_text: str) -> str:
    """What was wrong with the arguments of a call the server refused, with the function's signature: the same
    check `run --call` makes (argument count, then each argument against its parameter's type), as upstream's
    CLI adds the signature to the server's `invalid arguments` answer."""
    from spacetime_core.sats.satn import format_type
    from spacetime_core.sats.satsjson import type_from_json, typespace_from_json

    sec = _sections(schema)
    fn = _functions(schema)[function]
    kind = "procedure" if fn in (sec.get("Procedures") or []) else "reducer"
    try:
        typespace = typespace_from_json(sec["Typespace"])
        params = type_from_json({"Product": fn["params"]})
        names = _type_names(sec)
    except (KeyError, TypeError, ValueError):
        return f"400: {server_text}"
    try:
        parse_cli_args(params, words, typespace, function, names)
    except ValueError as e:
        return f"invalid arguments for {kind} {function}: {e}"
    sig = ", ".join(f"{n}: {format_type(t, names=names)}" for n, t in params.elements)
    return f"invalid arguments for {kind} {function}({sig}): the server answered: {server_text}"


@click.command()
@click.argument("database")
@click.argument("function")
@click.argument("args", nargs=-1)
@_server_option
def call(database: str, function: str, args: tuple[str, ...], server: str | None, anonymous: bool) -> None:
    """Call reducer (or procedure) FUNCTION of DATABASE with ARGS (each a JSON value; bare text for strings)."""
    api = api_for(server, anonymous)
    try:
        schema = api.schema(database, 10)
    except Exception:
        schema = None
    params = _params(schema, function) if schema is not None else None
    if schema is not None and params is None:
        sec = _sections(schema)
        lifecycle = {x.get("function_name") for x in sec.get("LifeCycleReducers") or []}
        names = [n for n, r in _functions(schema).items() if (r.get("source_name") or r.get("name")) not in lifecycle]
        # called by its Python name, which the server's snake_case policy changed (def add2 -> add_2): as with
        # upstream's CLI only the published name is called, but say why
        published = [n for n, r in _functions(schema).items() if r.get("source_name") == function]
        why = (f"; the server publishes {function} as {published[0]} (its snake_case policy), and clients call it "
               "that" if len(published) == 1 and published[0] != function else "")
        _fail(did_you_mean(function, names) + f" (database {database}){why}")
    types = [p["algebraic_type"] for p in params] if params is not None and len(params) == len(args) else None
    values = [_cli_arg(a, types[i] if types else None) for i, a in enumerate(args)]
    from client_sdk.http import HttpError

    try:
        result = api.call(database, function, values)
    except (HttpError, OSError) as e:
        if isinstance(e, HttpError) and e.status == 400 and e.text.lstrip().startswith("invalid arguments") \
                and params is not None:
            _fail(_invalid_arguments(schema, function, list(args), e.text.strip()))
        if isinstance(e, HttpError) and e.status == 500 and "fatal error" in e.text:  # a procedure trapped
            _fail(f"{e.status}: {e.text.strip()}\n  the module's log has the reason: spacetime-py logs {database}")
        _http_fail(e, api.server)
    if result is not None:
        click.echo(json.dumps(result))


# ------------------------------------------------------------------------------------------- sql

def _type_name(t: dict, names: dict[int, str] | None = None) -> str:
    """A SATS-JSON type as the SATS type formatter prints it (spacetime_core.sats.satn), refs by their type name."""
    from spacetime_core.sats.satn import format_type
    from spacetime_core.sats.satsjson import type_from_json

    try:
        return format_type(type_from_json(t), names=names)
    except Exception:  # noqa: BLE001 - an unreadable type is shown as its JSON rather than failing describe
        return json.dumps(t)


def _typespace(api, database: str):
    """The module's typespace (for columns of named types), or None if the schema cannot be read."""
    from spacetime_core.sats.satsjson import typespace_from_json

    try:
        return typespace_from_json(_sections(api.schema(database, 10))["Typespace"])
    except Exception:  # noqa: BLE001 - without it, such cells are shown as JSON
        return None


def _cell(v, ty_json=None, typespace=None) -> str:
    """One /sql cell (untyped SATS-JSON) the way `spacetime sql` prints it: strings quoted, identities and bytes
    as 0x-hex, timestamps RFC 3339, products `(a = 1)`, sums and options by variant name `(some = 5)`."""
    if ty_json is not None:
        from spacetime_core.sats.satn import format_value
        from spacetime_core.sats.satsjson import type_from_json, value_from_json

        try:
            t = type_from_json(ty_json)
            return format_value(t, value_from_json(t, v, typespace), typespace)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            pass
    return v if isinstance(v, str) else json.dumps(v)


@click.command()
@click.argument("database")
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_server_option
def sql(database: str, query: str, fmt: str, server: str | None, anonymous: bool) -> None:
    """Run one SQL statement against DATABASE and print the result."""
    api = api_for(server, anonymous)
    if fmt == "json":
        r = _http_call(api.request, "POST", f"/v1/database/{database}/sql", body=query.encode())
        click.echo(r.text)
        return
    results = _http_call(api.sql, database, query)
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    typespace = None
    for res in results:
        cols = [e["name"].get("some", "") if isinstance(e["name"], dict) else e["name"]
                for e in res["schema"]["elements"]]
        if not cols:
            st = res.get("stats", {})
            n = sum(st.values()) if st else 0
            click.echo(f"OK ({n} row{'s' if n != 1 else ''} affected)" if n else "OK")
            continue
        table = Table(show_edge=False)
        for c in cols:
            table.add_column(c)
        types = [e.get("algebraic_type") for e in res["schema"]["elements"]]
        if typespace is None and '"Ref"' in json.dumps(types):  # named types: resolve them with the module's
            typespace = _typespace(api, database)
        for row in res["rows"]:
            table.add_row(*(_cell(v, t, typespace) for v, t in zip(row, types)))
        console.print(table)
        click.echo(f"({len(res['rows'])} row{'s' if len(res['rows']) != 1 else ''})")


# ------------------------------------------------------------------------------------------- logs

def _format_log(line: dict) -> str:
    level = line.get("level", "")
    ts = line.get("ts")
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1e6)) + f".{int(ts % 1_000_000):06d}Z" if ts else ""
    where = ""
    if line.get("filename") and line.get("filename") != "__spacetimedb__":
        where = f" {line['filename']}:{line.get('line_number', '')}"
    return f"{when} {level:>5}:{where} {line.get('message', '')}"


@click.command()
@click.argument("database")
@click.option("-n", "--num-lines", type=int, default=None, help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as the module logs them.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_server_option
def logs(database: str, num_lines: int | None, follow: bool, fmt: str, server: str | None, anonymous: bool) -> None:
    """Print the module logs of DATABASE (owner only)."""
    api = api_for(server, anonymous)
    out = (lambda d: json.dumps(d)) if fmt == "json" else _format_log
    if follow:
        try:
            for line in _http_call(api.follow_logs, database, 10 if num_lines is None else num_lines):
                click.echo(out(line))
        except KeyboardInterrupt:
            pass
        return
    for line in _http_call(api.logs, database, num_lines):
        click.echo(out(line))


# ------------------------------------------------------------------------------------------- describe

@click.command()
@click.argument("database")
@click.argument("kind", required=False, type=click.Choice(["table", "reducer"]))
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the module def as JSON.")
@_server_option
def describe(database: str, kind: str | None, name: str | None, as_json: bool, server: str | None,
             anonymous: bool) -> None:
    """Describe the tables and reducers of DATABASE (or one `table NAME` / `reducer NAME`)."""
    api = api_for(server, anonymous)
    schema = _schema_v10(api, database)
    if as_json and kind is None:
        click.echo(json.dumps(schema, indent=2))
        return
    sec = _sections(schema)
    types = (sec.get("Typespace") or {}).get("types", [])
    names = _type_names(sec)
    tables = sec.get("Tables") or []
    reducers = sec.get("Reducers") or []
    lifecycle = {x["function_name"]: next(iter(x["lifecycle_spec"])) for x in sec.get("LifeCycleReducers") or []}
    # a server re-exports its validated def: source names in the sections, canonical ones in ExplicitNames
    canonical = {(kind_, e[kind_]["source_name"]): e[kind_]["canonical_name"]
                 for e in (sec.get("ExplicitNames") or {}).get("entries", []) for kind_ in e}

    def tname(t, kind_="Table"):
        source = t.get("source_name") or t.get("name")
        return canonical.get((kind_, source), source)

    def rname(r):
        return tname(r, "Function")

    if kind:
        items = tables if kind == "table" else reducers
        named = tname if kind == "table" else rname
        match = [x for x in items if name in (named(x), x.get("source_name") or x.get("name"))]
        if not match:
            _fail(f"no {kind} named {name!r}")
        if as_json:
            click.echo(json.dumps(match[0], indent=2))
            return
        tables, reducers = (match, []) if kind == "table" else ([], match)
    for t in tables:
        access = next(iter(t["table_access"]))
        click.echo(f"table {tname(t)} ({access.lower()})")
        row = types[t["product_type_ref"]] if t["product_type_ref"] < len(types) else {}
        pk = set(t.get("primary_key", []))
        for i, e in enumerate(row.get("Product", {}).get("elements", [])):
            mark = "  [primary key]" if i in pk else ""
            click.echo(f"    {e['name'].get('some', i)}: {_type_name(e['algebraic_type'], names)}{mark}")
    for r in reducers:
        params = ", ".join(f"{e['name'].get('some', '')}: {_type_name(e['algebraic_type'], names)}"
                           for e in r["params"]["elements"])
        extra = f"  [{lifecycle[rname(r)]}]" if rname(r) in lifecycle else ""
        click.echo(f"reducer {rname(r)}({params}){extra}")
    if kind is None:  # procedures and views too: what a client can call or subscribe to
        for p in sec.get("Procedures") or []:
            params = ", ".join(f"{e['name'].get('some', '')}: {_type_name(e['algebraic_type'], names)}"
                               for e in p["params"]["elements"])
            click.echo(f"procedure {rname(p)}({params}) -> {_type_name(p['return_type'], names)}")
        for v in sec.get("Views") or []:
            extra = "  [anonymous]" if v.get("is_anonymous") else ""
            click.echo(f"view {rname(v)} -> {_type_name(v['return_type'], names)}{extra}")


# ------------------------------------------------------------------------------------------- delete

@click.command()
@click.argument("database")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@_server_option
def delete(database: str, yes: bool, server: str | None, anonymous: bool) -> None:
    """Delete DATABASE and all its data (owner only)."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete database {database} and all its data?", abort=True)
    api = api_for(server, anonymous)
    _http_call(api.delete, database)
    click.echo(f"Deleted database {database}")


# ------------------------------------------------------------------------------------------- dev

def _snapshot(root: Path) -> dict:
    files = [root] if root.is_file() else [p for p in root.rglob("*.py") if "target" not in p.parts]
    out = {}
    for p in files:
        try:
            out[str(p)] = p.stat().st_mtime_ns
        except OSError:
            pass
    return out


@click.command()
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.argument("name", required=False)
@click.option("-l", "--listen-addr", default="127.0.0.1:3000", show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Server data dir (default: a fresh temporary folder, deleted on exit).")
@click.option("--interval", type=float, default=0.5, show_default=True, help="Seconds between change checks.")
@click.option("--max-cycles", type=int, default=None, hidden=True)
def dev(path: Path, name: str | None, listen_addr: str, data_dir: Path | None, interval: float,
        max_cycles: int | None) -> None:
    """Build the module at PATH, start a local server, publish it as NAME, then rebuild and republish whenever
    a .py file changes (data is kept when the host can migrate; otherwise the database is cleared)."""
    import tempfile
    import threading

    from client_sdk.http import HttpError

    host, port = _split_addr(listen_addr)
    _check_can_listen(host, port)
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="spacetime-py-dev-")
        data_dir = Path(tmp.name)
    name = name or _default_name(path)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    ready = threading.Event()
    stop = threading.Event()
    server = threading.Thread(target=_serve_in_thread, args=(data_dir, host, port, ready, stop), daemon=True)
    server.start()
    if not ready.wait(30):
        _fail("the server did not start")
    api = api_for(url, fresh=tmp is not None)  # the CLI's identity: `spacetime-py logs/sql/call` act as the owner
    click.echo(f"dev server on {url}, database {name}, watching {path} (Ctrl-C to stop)")

    def deploy(first: bool) -> None:
        from module_sdk.build import BuildError
        from module_sdk.build import build as build_module

        try:
            wasm = build_module(path).output.read_bytes()
        except BuildError as e:
            click.secho(str(e), fg="red", err=True)
            return
        try:
            res = api.publish(wasm, name)
            click.echo(f"{'published' if first else 'republished'} {name}: {res['op']}")
        except HttpError as e:
            if e.status == 400 and "update rejected" in e.text:
                res = api.publish(wasm, name, clear=True)
                click.secho(f"republished {name} with its data cleared ({e.text.strip()})", fg="yellow")
            else:
                click.secho(f"publish failed: {e.status} {e.text.strip()}", fg="red", err=True)

    try:
        deploy(True)
        seen = _snapshot(path)
        cycles = 0
        while max_cycles is None or cycles < max_cycles:
            time.sleep(interval)
            cycles += 1
            now = _snapshot(path)
            if now != seen:
                seen = now
                deploy(False)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.join(10)
        if tmp is not None:
            tmp.cleanup()


def _default_name(path: Path) -> str:
    import re

    stem = path.resolve().stem if path.is_file() else path.resolve().name
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", stem.lower())).strip("-") or "dev"


def _serve_in_thread(data_dir: Path, host: str, port: int, ready, stop) -> None:
    import asyncio

    from aiohttp import web

    from harness.server.app import create_app

    async def main():
        app = create_app(data_dir)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await runner.cleanup()

    asyncio.run(main())


COMMANDS = [start, publish, call, sql, logs, describe, delete, dev]
