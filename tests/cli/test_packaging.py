"""A wheel (non-editable install) carries the configs and runs from anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.support import ROOT


def test_wheel_ships_the_configs(tmp_path):
    pytest.importorskip("setuptools")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("metalearn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {p.relative_to(ROOT).as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert configs and {f"metalearn/{c}" for c in configs} <= names
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    env = {"PYTHONPATH": str(target), "PATH": ""}
    where = subprocess.run(
        [sys.executable, "-c", "import metalearn.cli as c; print(c.config_dir())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert where.stdout.strip() == str(target / "metalearn" / "conf"), where.stderr
    help_run = subprocess.run(
        [sys.executable, "-m", "metalearn", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "== Config groups ==" in help_run.stdout
