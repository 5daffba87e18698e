"""Build hook: a wheel carries crds/ and examples/ as package data, so `org-operator demo` works from it.

They stay where they are in the repository (the single source); the build copies them into
``org_operator/data/`` of the wheel. An editable install reads them from the checkout instead.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithDemoFiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "org_operator" / "data"
        for name in ("crds", "examples"):
            shutil.copytree(ROOT / name, target / name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithDemoFiles})
