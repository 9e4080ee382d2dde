"""`spacetime-py`: the one command-line tool (build modules; the host and client verbs join it)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, highlight=False, soft_wrap=True)


@click.group()
@click.version_option(package_name="spacetime-py")
def main() -> None:
    """Write SpacetimeDB modules in Python."""


@main.command()
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write the .wasm "
              "(default: <module folder>/target/module.wasm).")
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
        if quiet:
            result = build_module(path, output, extra_paths=list(extra_paths))
        else:
            with console.status("building") as status:
                result = build_module(path, output, extra_paths=list(extra_paths),
                                      progress=lambda msg: status.update(msg))
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
@click.option("--call", "calls", multiple=True, metavar="'REDUCER [JSON ARGS]'",
              help="Call a reducer after init, e.g. --call 'send_message [\"hi\"]' (repeatable, in order).")
@click.option("--connect", is_flag=True, help="Connect as a client first (runs client_connected).")
def run(path: Path, calls: tuple[str, ...], connect: bool) -> None:
    """Build the module at PATH and run it in the local host: init, optional client connect, each --call,
    then print every table and the module's log."""
    import json
    import os

    from rich.table import Table

    from harness.host import Database
    from module_sdk.build import BuildError
    from module_sdk.build import build as build_module
    from spacetime_core.sats import ConnectionId, Identity

    try:
        with console.status("building"):
            result = build_module(path)
    except BuildError as e:
        console.print(escape(str(e)))
        sys.exit(1)
    owner = Identity.from_bytes(os.urandom(32))
    db = Database.create(result.output.read_bytes(), owner=owner)
    console.print(f"[bold]{result.output}[/bold] running in the local host as database {db.identity}")
    if connect:
        out = db.client_connected(owner, ConnectionId.from_bytes(os.urandom(16)))
        console.print(f"client_connected: {out.status}" + (f" ({escape(out.error)})" if out.error else ""))
    failed = False
    for spec in calls:
        name, _, raw = spec.strip().partition(" ")
        try:
            args = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as e:
            raise click.BadParameter(f"arguments of {name} are not JSON: {e}") from None
        out = db.call_reducer(name, args if isinstance(args, (list, dict)) else [args], sender=owner)
        failed |= not out.committed
        color = "green" if out.committed else "red"
        console.print(f"{escape(name)}: [{color}]{out.status}[/{color}] in {out.duration_us:.0f} µs"
                      + (f": {escape(out.error)}" if out.error else ""))
    for t in db.mdef.tables:
        table = Table(title=f"{t.name} ({'public' if t.public else 'private'})", title_justify="left")
        for col in t.column_names:
            table.add_column(col)
        for row in db.rows(t.name):
            table.add_row(*(escape(str(v)) for v in row))
        console.print(table)
    for rec in db.logs():
        where = f"{rec.filename}:{rec.line}" if rec.filename else (rec.target or "")
        console.print(f"[dim]{rec.level_name:5} {escape(where)}[/dim] {escape(rec.message)}")
    sys.exit(1 if failed else 0)


def _register_verbs() -> None:
    """The server verbs (start, publish, call, sql, logs, describe, delete, dev) and client codegen."""
    from client_sdk.codegen.cli import generate_command
    from harness.cli.server import COMMANDS
    from harness.host.describe import module_def_from_wasm

    for command in (*COMMANDS, generate_command(module_def_from_wasm)):
        main.add_command(command)


_register_verbs()

if __name__ == "__main__":  # pragma: no cover
    main()
