"""setuptools' build backend, plus the pinned module toolchain (the [toolchain] extra) for wheel builds only.

Building a wheel builds the module runtime into it (setup.py -> module_sdk/build/prebuilt.py) and needs the
toolchain; an editable checkout builds the runtime later, on demand, from the toolchain installed with
`pip install -e '.[toolchain]'`, so its isolated build environment stays small.
"""

import tomllib
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - the rest of the PEP 517/660 hooks unchanged


def _toolchain() -> list[str]:
    """The [toolchain] pins, plus the wasmtime pin (module_sdk.build imports it)."""
    with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    wasmtime = [d for d in project["dependencies"] if d.startswith("wasmtime")]
    return [*project["optional-dependencies"]["toolchain"], *wasmtime]


def get_requires_for_build_wheel(config_settings=None):
    return [*_setuptools.get_requires_for_build_wheel(config_settings), *_toolchain()]
