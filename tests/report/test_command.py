"""`metalearn report` and `python -m metalearn.report` as commands, in a subprocess: exit codes, one-line errors,
and no torch import (the command starts in well under a second)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.rundirs import write_algorithm_sweep
from tests.support import ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return write_algorithm_sweep(tmp_path / "sweep")


def test_metalearn_report(sweep: Path) -> None:
    done = run("-m", "metalearn", "report", str(sweep), "--no-plots")
    assert done.returncode == 0, done.stderr
    assert "| maml      | accuracy (%) | 82.00 ± 4.97 |" in done.stdout and done.stderr == ""
    assert (sweep / "report.csv").is_file() and not (sweep / "val_curves.png").exists()


def test_python_m_metalearn_report_with_figures(sweep: Path, tmp_path: Path) -> None:
    done = run("-m", "metalearn.report", str(sweep), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["report.csv", "report.md", "test_metric.png", "val_curves.png", "val_curves_time.png"]
    assert [line for line in done.stdout.splitlines() if line.startswith("wrote ")] == [
        f"wrote {tmp_path / 'out' / name}"
        for name in ("report.md", "report.csv", "val_curves.png", "val_curves_time.png", "test_metric.png")
    ]


def test_a_missing_directory_is_one_error_line(tmp_path: Path) -> None:
    done = run("-m", "metalearn", "report", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr == f"Error: {tmp_path / 'nowhere'}: no such directory\n" and done.stdout == ""


def test_help(sweep: Path) -> None:
    done = run("-m", "metalearn", "report", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: metalearn report ")
    assert "--filter KEY=VALUE" in done.stdout and "--by KEY" in done.stdout


def test_the_report_never_imports_torch(sweep: Path) -> None:
    code = (
        "import sys; from metalearn.report import report; "
        f"code = report([{str(sweep)!r}, '--out', {str(sweep / 'out')!r}]); "
        "print(code, 'torch' in sys.modules)"
    )
    done = run("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 False"
