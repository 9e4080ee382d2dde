"""Wheel builds put the prebuilt runtime and stdlib inside (module_sdk/build/prebuilt.py), so installing the wheel
needs no compiler toolchain.  Editable installs skip this: a checkout builds the runtime on demand."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithRuntime(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        sys.path.insert(0, str(ROOT))
        from module_sdk.build import prebuilt

        prebuilt.write(Path(self.build_lib) / "module_sdk" / "build" / "prebuilt", progress=print)


setup(cmdclass={"build_py": BuildPyWithRuntime})
