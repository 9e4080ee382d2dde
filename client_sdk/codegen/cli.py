"""The `generate` command of `spacetime-py` (registered in harness/cli)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option("--lang", default="python", type=click.Choice(["python"]), show_default=True,
              help="Language of the bindings.")
@click.option("--out-dir", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder (a Python package) to write the bindings into; earlier generated files are replaced.")
@click.option("--module-wasm", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A built module (.wasm) to read the definition from.")
@click.option("--server", help="Server URL to fetch the definition from (with --database).")
@click.option("--database", help="Database name or identity on --server.")
@click.option("--token", envvar="SPACETIMEDB_TOKEN", help="Token for --server (default: $SPACETIMEDB_TOKEN).")
def generate(lang: str, out_dir: Path, module_wasm: Path | None, server: str | None, database: str | None,
             token: str | None) -> None:
    """Generate typed client bindings (row classes, table handles, reducer calls) for a module."""
    from . import CodegenError, module_def_from_server, module_def_from_wasm
    from . import generate as gen

    if (module_wasm is None) == (server is None):
        raise click.UsageError("give either --module-wasm FILE or --server URL --database NAME")
    if server is not None and not database:
        raise click.UsageError("--server needs --database NAME")
    try:
        mdef = module_def_from_wasm(module_wasm) if module_wasm else module_def_from_server(server, database, token)
        files = gen(mdef, out_dir, lang)
    except CodegenError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - shown to the user: load errors, HTTP errors
        click.echo(f"error: cannot read the module definition: {e}", err=True)
        sys.exit(1)
    click.echo(f"wrote {len(files)} files to {out_dir}")
