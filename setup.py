"""Ship conf/ inside the wheel as metalearn/conf, so a non-editable install finds its configs.

Everything else about the package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "conf"
        if source.is_dir() and not getattr(self, "editable_mode", False):
            shutil.copytree(source, Path(self.build_lib) / "metalearn" / "conf", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithConfigs})
