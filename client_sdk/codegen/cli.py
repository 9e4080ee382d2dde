"""`generate`: typed client bindings from a server's schema (`spacetime-py-client generate`), or, in the author
tools (`spacetime-py generate`, harness/cli), also from a built .wasm, whose definition only a host can read."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from spacetime_core.module_def import ModuleDef


def generate_command(read_wasm: Callable[[Path], ModuleDef] | None = None,
                     build: Callable[[Path], Path] | None = None) -> click.Command:
    """The `generate` command; with `read_wasm` (a host that runs `__describe_module__`) it also takes --module-wasm,
    and with `build` (module source -> built .wasm) also -p/--module-path, as upstream's `spacetime generate`."""

    @click.command(name="generate")
    @click.option("--lang", default="python", type=click.Choice(["python"]), show_default=True,
                  help="Language of the bindings.")
    @click.option("--out-dir", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
                  help="Folder (a Python package) to write the bindings into; earlier generated files are replaced.")
    @click.option("--server", help="Server URL to fetch the definition from (with --database).")
    @click.option("--database", help="Database name or identity on --server.")
    @click.option("--token", envvar="SPACETIMEDB_TOKEN", help="Token for --server (default: $SPACETIMEDB_TOKEN).")
    def generate(lang: str, out_dir: Path, server: str | None, database: str | None, token: str | None,
                 module_wasm: Path | None = None, module_path: Path | None = None) -> None:
        """Generate typed client bindings (row classes, table handles, reducer calls) for a module."""
        from . import CodegenError, module_def_from_server
        from . import generate as gen

        if read_wasm is None and server is None:
            raise click.UsageError("give --server URL --database NAME")
        if module_wasm is not None and module_wasm.suffix == ".py" and build is not None:
            raise click.UsageError(f"{module_wasm} is the module's source: pass it as -p/--module-path (it is built "
                                   "first), or pass the built .wasm to --module-wasm")
        if read_wasm is not None and [module_wasm, module_path, server].count(None) != 2:
            raise click.UsageError("give one of -p/--module-path PATH, --module-wasm FILE or --server URL "
                                   "--database NAME" if build is not None else
                                   "give either --module-wasm FILE or --server URL --database NAME")
        if module_path is not None:
            assert build is not None
            module_wasm = build(module_path)
        if server is not None and not database:
            raise click.UsageError("--server needs --database NAME")
        try:
            mdef = read_wasm(module_wasm) if module_wasm else module_def_from_server(server, database, token)
            files = gen(mdef, out_dir, lang)
        except CodegenError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except Exception as e:  # noqa: BLE001 - shown to the user: load errors, HTTP errors
            click.echo(f"error: cannot read the module definition: {e}", err=True)
            sys.exit(1)
        click.echo(f"wrote {len(files)} files to {out_dir}")

    if read_wasm is not None:
        generate.params.insert(2, click.Option(
            ["--module-wasm"], type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A built module (.wasm) to read the definition from."))
    if build is not None:
        generate.params.insert(2, click.Option(
            ["-p", "--module-path"], type=click.Path(exists=True, path_type=Path),
            help="A module's source (a .py file or a package folder): built first, as `spacetime-py build` does."))
    return generate


@click.group()
def main() -> None:
    """spacetime-py-client: tools of the Python client (no host, no module toolchain)."""


main.add_command(generate_command())

if __name__ == "__main__":  # pragma: no cover
    main()
