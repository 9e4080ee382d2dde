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


if __name__ == "__main__":  # pragma: no cover
    main()
