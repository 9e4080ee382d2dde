"""`spacetime-py`: the one command-line tool (build modules; the host and client verbs join it)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def build_progress(quiet: bool = False) -> Iterator[Callable[[str], None] | None]:
    """Progress for a build, as pip shows it: a live status line with the current step, and each step that
    took a second or more (the first build compiles the runtime and the stdlib) kept as a line with its time."""
    if quiet:
        yield None
        return
    state: dict = {"step": None, "msg": "", "t": 0.0}

    def done(now: float) -> None:
        if state["step"] is not None and now - state["t"] >= 1.0:
            console.print(f"  [green]✓[/green] {escape(state['msg'])} [dim]({now - state['t']:.1f} s)[/dim]")

    with console.status("building") as status:
        def say(msg: str) -> None:
            now = time.perf_counter()
            step = msg.split(":")[0]
            if step != state["step"]:
                done(now)
                state["step"], state["t"] = step, now
            state["msg"] = msg
            status.update(escape(msg))

        yield say
        done(time.perf_counter())


@click.group()
@click.version_option(package_name="spacetime-py")
def main() -> None:
    """Write SpacetimeDB modules in Python."""


@main.command()
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write the .wasm "
              "(default: <module folder>/target/module.wasm; target/<name>.wasm for a single .py file).")
@click.option("--path", "extra_paths", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Extra folder to import pure-Python dependencies from (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the output path.")
def build(path: Path, output: Path | None, extra_paths: tuple[Path, ...], quiet: bool) -> None:
    """Build the module at PATH (a .py file or a package folder) into a SpacetimeDB .wasm."""
    from module_sdk.build import BuildError
    from module_sdk.build import build as build_module
    from module_sdk.build.toolchain import ToolchainError
    from module_sdk.build.validate import InvalidModule

    try:
        with build_progress(quiet) as say:
            result = build_module(path, output, extra_paths=list(extra_paths), progress=say)
    except (BuildError, ToolchainError, InvalidModule) as e:
        console.print(escape(str(e)), style=None if isinstance(e, BuildError) else "red")
        sys.exit(1)
    if quiet:
        click.echo(result.output)
        return
    for level, msg in result.logs:
        console.print(f"  [dim]module log[/dim] {escape(f'[{level}] {msg}')}")
    console.print(
        f"built [bold]{result.output}[/bold]: {result.size / 1e6:.2f} MB in {result.seconds:.2f} s "
        f"({len(result.modules)} Python modules, {result.phases} pass{'es' if result.phases > 1 else ''})"
    )


@main.command()
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--call", "calls", multiple=True, metavar="'NAME [ARG ...]'",
              help="Call a reducer or procedure after init (repeatable, in order). Each ARG is one JSON value, as "
                   "in `spacetime-py call DB NAME ARG...`: --call 'add 1 \"arena\" {\"Team\": 4}'; bare text "
                   "for a String argument and a bare variant name for a unit variant also work.")
@click.option("--connect", is_flag=True, help="Connect as a client first (runs client_connected).")
def run(path: Path, calls: tuple[str, ...], connect: bool) -> None:
    """Build the module at PATH and run it in the local host: init, optional client connect, each --call,
    then print every table, every view and the module's log."""
    import os

    from rich.table import Table

    from harness.cli.server import did_you_mean, parse_cli_args, split_call
    from harness.host import Database
    from harness.host.database import SYSTEM_LOG_NAME
    from module_sdk.build import BuildError
    from module_sdk.build import build as build_module
    from spacetime_core.sats import ConnectionId, Identity
    from spacetime_core.sats.satn import format_value

    try:
        with build_progress() as say:
            result = build_module(path, progress=say)
    except BuildError as e:
        console.print(escape(str(e)))
        sys.exit(1)
    owner = Identity.from_bytes(os.urandom(32))
    db = Database.create(result.output.read_bytes(), owner=owner)
    mdef = db.mdef
    console.print(f"[bold]{result.output}[/bold] running in the local host as database {db.identity}")
    if connect:
        out = db.client_connected(owner, ConnectionId.from_bytes(os.urandom(16)))
        console.print(f"client_connected: {out.status}" + (f" ({escape(out.error)})" if out.error else ""))
    failed = False
    reducers = {r.name: r for r in mdef.reducers if r.lifecycle is None}
    reducers.update({r.source_name: r for r in mdef.reducers if r.lifecycle is None and r.source_name})
    procedures = {p.name: p for p in mdef.procedures}
    for spec in calls:
        words = split_call(spec)
        name, args = (words[0], words[1:]) if words else ("", [])
        fn = reducers.get(name) or procedures.get(name)
        if fn is None:
            console.print(f"[red]error:[/red] {escape(did_you_mean(name, sorted({*reducers, *procedures})))}")
            failed = True
            continue
        try:
            values = parse_cli_args(fn.params, args, mdef.typespace, name, {d.ref: d.name for d in mdef.types})
        except ValueError as e:
            console.print(f"[red]error:[/red] {escape(str(e))}")
            failed = True
            continue
        if name in procedures and fn is procedures[name]:
            pout = db.call_procedure(name, values, sender=owner)
            ok = pout.status == "returned"
            shown = format_value(fn.return_type, pout.value, mdef.typespace) if ok else ""
            failed |= not ok
            color = "green" if ok else "red"
            console.print(f"{escape(name)}: [{color}]{pout.status}[/{color}] in {pout.duration_us:.0f} µs"
                          + (f": {escape(shown)}" if ok else f": {escape(pout.error or '')}"))
            continue
        out = db.call_reducer(fn.name, values, sender=owner)
        failed |= not out.committed
        color = "green" if out.committed else "red"
        console.print(f"{escape(name)}: [{color}]{out.status}[/{color}] in {out.duration_us:.0f} µs"
                      + (f": {escape(out.error)}" if out.error else ""))
    for t in mdef.tables:
        table = Table(title=f"{t.name} ({'public' if t.public else 'private'})", title_justify="left")
        for col in t.column_names:
            table.add_column(col)
        row_t = mdef.typespace[t.row_ref]
        for row in db.rows(t.name):
            table.add_row(*(escape(format_value(ct, v, mdef.typespace)) for (_, ct), v in zip(row_t.elements, row)))
        console.print(table)
    _print_views(db, owner)
    for rec in db.logs():
        if rec.filename == SYSTEM_LOG_NAME:  # the host's own record (a reducer's error), as `logs` shows it
            where = ""
        elif rec.filename:
            where = rec.filename if rec.line is None else f"{rec.filename}:{rec.line}"
        else:
            where = rec.target or ""
        console.print(f"[dim]{rec.level_name:5}{escape(' ' + where if where else '')}[/dim] {escape(rec.message)}")
    sys.exit(1 if failed else 0)


def _print_views(db, owner) -> None:
    """Each view's rows as the owner sees them (as `SELECT * FROM view` would); a failing view says why."""
    from rich.table import Table

    from harness.sql.errors import SqlError
    from harness.sql.views import ViewInfo, materialize
    from spacetime_core.sats.satn import format_value

    ts = db.mdef.typespace
    for i, vdef in enumerate(db.mdef.views):
        title = f"view {vdef.name} ({'anonymous' if vdef.is_anonymous else 'as the caller'})"
        try:
            info = ViewInfo(db, vdef, -1 - i)
            rows = materialize(db, {info.id: info}, owner)[info.id]
        except SqlError as e:
            console.print(f"{escape(title)}: [red]{escape(str(e))}[/red]")
            continue
        table = Table(title=title, title_justify="left")
        for col in info.columns:
            table.add_column(col)
        for _bsatn, row in rows:
            table.add_row(*(escape(format_value(ct, v, ts)) for ct, v in zip(info.declared_types, row)))
        console.print(table)


@main.command()
@click.argument("name")
@click.option("--client", is_flag=True, help="Create a client project instead of a module project.")
@click.option("--module", "module_path", type=click.Path(exists=True, path_type=Path),
              help="With --client: the module the client's tests publish (a path).")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to create the project (default: ./NAME).")
def init(name: str, client: bool, module_path: Path | None, directory: Path | None) -> None:
    """Create a project NAME: a module (the module, tests on the pytest plugin, README) or, with --client, a
    client of a database (a script on client_sdk, its test, README)."""
    from module_sdk.scaffold import ScaffoldError, create_client_project, create_module_project, package_name

    if module_path is not None and not client:
        raise click.UsageError("--module is for --client projects")
    dest = directory or Path(name)
    try:
        files = (create_client_project(dest, name, module_path) if client else create_module_project(dest, name))
    except ScaffoldError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        sys.exit(1)
    for f in files:
        console.print(f"  created {escape(str(f))}")
    pkg = package_name(name)
    if client:
        console.print(f"next: cd {escape(str(dest))} && python -m {pkg} DATABASE --server URL")
    else:
        console.print(f"next: cd {escape(str(dest))} && spacetime-py build {pkg} && pytest")


@main.command()
@click.option("--data-dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A `spacetime-py start` data dir (with --database), or one database's own data dir.")
@click.option("--database", help="Database name or identity (in a server data dir).")
@click.option("--offset", required=True, type=int, help="The transaction to replay.")
@click.option("--native", "native", type=click.Path(exists=True, path_type=Path),
              help="Run this module source natively instead of the stored wasm (real tracebacks, breakpoints).")
@click.option("--pdb", "post_mortem", is_flag=True, help="With --native: open pdb where the reducer failed.")
def replay(data_dir: Path, database: str | None, offset: int, native: Path | None, post_mortem: bool) -> None:
    """Re-run the reducer call that produced transaction OFFSET on the state just before it (same caller,
    timestamp and arguments), print its logs and outcome, and say whether it wrote what was recorded. The
    data dir is copied first: replaying never changes the database."""
    from harness.host.replay import ReplayError, find_database_dir, replay_transaction
    from module_sdk.log import format_exception

    if post_mortem and native is None:
        raise click.UsageError("--pdb needs --native MODULE (the wasm has no Python frames to debug)")
    try:
        db_dir = find_database_dir(data_dir, database or "")
        res = replay_transaction(db_dir, offset, native=native, on_log=lambda r: console.print(
            f"  [dim]{r.level_name:5} {escape(f'{r.filename}:{r.line}' if r.filename else '')}[/dim] "
            f"{escape(r.message)}"))
    except ReplayError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        sys.exit(1)
    color = "green" if res.status == "committed" else "red"
    console.print(f"transaction {res.offset}: {escape(res.reducer)}{escape(repr(res.args))} by {res.caller} "
                  f"-> [{color}]{res.status}[/{color}]" + (f": {escape(res.error)}" if res.error else ""))
    console.print("writes: same as recorded" if res.same_writes else
                  "[yellow]writes: differ from what was recorded[/yellow] (the code or its inputs changed, or it "
                  "is not deterministic)")
    if res.exception is not None:
        console.print(escape(format_exception(res.exception).rstrip()))
        if post_mortem:
            import pdb

            pdb.post_mortem(res.exception.__traceback__)
    sys.exit(0 if res.status == "committed" else 1)


def _register_verbs() -> None:
    """The server verbs (start, publish, call, sql, logs, describe, delete, dev) and client codegen."""
    from client_sdk.codegen.cli import generate_command
    from harness.cli.server import COMMANDS
    from harness.host.describe import module_def_from_wasm

    def build_for_generate(path: Path) -> Path:
        from module_sdk.build import BuildError
        from module_sdk.build import build as build_module

        try:
            with build_progress() as say:
                return build_module(path, progress=say).output
        except BuildError as e:
            console.print(escape(str(e)))
            sys.exit(1)

    for command in (*COMMANDS, generate_command(module_def_from_wasm, build_for_generate)):
        main.add_command(command)


_register_verbs()

if __name__ == "__main__":  # pragma: no cover
    main()
