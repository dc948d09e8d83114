"""`metalearn report DIR [DIR ...]` (and `python -m metalearn.report`): the runs and sweeps under DIRs as one table
per setting (seeds together), plus figures.

Exit codes: 0 when the table was made (runs that failed, were stopped or never started are listed after it);
1 when runs were found but none has finished; 2 with one `Error: ...` line for bad arguments or no run found.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from metalearn.errors import MetalearnError, one_line
from metalearn.report.discover import find
from metalearn.report.grouping import Group, group_runs, matches, parse_filters, varying_keys
from metalearn.report.runs import Run
from metalearn.report.sweeps import Sweep, optuna_section
from metalearn.report.table import NOTE, Row, markdown, summarise, write_csv
from metalearn.report.text import display

MISSING_MATPLOTLIB = 'plots skipped: matplotlib is missing; pip install "metalearn[report]"'

_EXAMPLES = """\
examples:
  metalearn report outputs/multirun/2026-12-01/08-23-20        # one sweep: table and figures written into it
  metalearn report outputs --by algorithm --by sampler.k_shot   # every run, grouped by these keys
  metalearn report outputs --filter dataset=omniglot --out report/omniglot

Runs are grouped by the config values that differ between them, seeds and paths left out (seed, *.seed,
hydra.*, device.*, checkpoint, resume, dataset.root, ...). A group's option (algorithm=maml) stands for the keys
it sets; name a key with --by to group by it instead (e.g. --by experiment, --by device.name)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage text
        raise MetalearnError(f"{message} (see metalearn report --help)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="metalearn report",
        description="Aggregate metalearn runs and sweeps: a table per setting (test mean over seeds with Student's "
        "t 95%% interval) in Markdown and CSV, and validation/test figures.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run directories, sweep directories or folders holding them")
    p.add_argument("--by", action="append", default=[], metavar="KEY", help="group by this config key (repeatable)")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep the runs whose KEY is VALUE (repeatable; two values of one key keep either)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where report.md, report.csv and the figures go (default: DIR when one is given, else ./report)",
    )
    p.add_argument("--no-plots", action="store_true", help="write the table only")
    return p


def _check_dirs(dirs: list[Path]) -> None:
    for folder in dirs:
        if not folder.exists():
            raise MetalearnError(f"{folder}: no such directory")
        if not folder.is_dir():
            raise MetalearnError(f"{folder} is not a directory; give the folder of a run or sweep (or one above)")


def _keys(by: list[str], finished: list[Run]) -> list[str]:
    if not by:
        return varying_keys(finished)
    for key in by:
        if not any(key in run.config for run in finished):
            known = ", ".join(varying_keys(finished)) or "none"
            raise MetalearnError(f"--by {key}: no finished run has this key (keys that vary between the runs: {known})")
    return list(dict.fromkeys(by))


def _values_of(key: str, runs: list[Run]) -> str:
    """What --filter KEY could match: "KEY is one of: a, b", or that no run has KEY."""
    values = sorted({display(run.config[key]) for run in runs if key in run.config})
    if not values:
        return f"no run has the key {key}"
    return f"{key} is one of: " + ", ".join(values[:10]) + (", ..." if len(values) > 10 else "")


def _unlisted(runs: list[Run]) -> str:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    lines = [f"### Not in the table: {len(runs)} ({', '.join(f'{n} {s}' for s, n in counts.items())})", ""]
    for run in runs:
        what = " ".join(o for o in run.overrides if not o.lstrip("+").startswith("hydra."))
        lines.append(f"- {run.status}: {run.path}" + (f" [{what}]" if what else "") + f": {run.message}")
    return "\n".join(lines)


def _duplicate_seeds(rows: list[Row]) -> list[str]:
    notes = []
    for row in rows:
        seeds = [run.config.get("seed") for run in row.group.runs]
        if len(set(map(str, seeds))) < len(seeds):
            notes.append(
                f"note: {row.group.label or 'all runs'} has {len(seeds)} runs of {len(set(map(str, seeds)))} distinct "
                "seeds; each run counts as one sample"
            )
    return notes


def _say(text: str) -> None:
    """Print to stdout; a reader that has gone (`metalearn report ... | head`) only loses the text."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def report(argv: list[str]) -> int:
    """The command, returning its exit code; raises MetalearnError for bad arguments or when no run is found."""
    args = parser().parse_args(argv)
    dirs = [Path(d) for d in args.dirs]
    _check_dirs(dirs)
    filters = parse_filters(args.filter)
    where = ", ".join(map(str, dirs))
    runs, sweeps = find(dirs)
    if not runs:
        raise MetalearnError(
            f"no metalearn run under {where} (a run directory holds results.json, failed.json or .hydra/config.yaml)"
        )
    if filters:
        found = runs
        runs = [run for run in found if run.status != "missing" and matches(run, filters)]
        if not runs:
            have = "; ".join(_values_of(key, found) for key in filters)
            raise MetalearnError(f"none of the {len(found)} runs under {where} matches --filter ({have})")
    finished = [run for run in runs if run.finished]
    others = [run for run in runs if not run.finished]
    if not finished:
        _say(_unlisted(others))
        print(f"Error: none of the {len(runs)} runs under {where} has finished (listed above)", file=sys.stderr)
        return 1
    keys = _keys(args.by, finished)
    groups = group_runs(finished, keys)
    rows = [summarise(group) for group in groups]
    kept = {run.path for run in runs}
    optuna = [s for s in sweeps if s.is_optuna and any(job.path in kept for job in s.jobs)]
    sections = [markdown(keys, rows), NOTE, *_duplicate_seeds(rows)]
    sections += [optuna_section(_only(s, kept)) for s in optuna]
    if others:
        sections.append(_unlisted(others))
    body = "\n\n".join(sections)
    out = Path(args.out) if args.out else (dirs[0] if len(dirs) == 1 else Path("report"))
    try:
        written, skipped = _write(out, keys, rows, groups, body, where, plots=not args.no_plots)
    except OSError:
        _say(body)  # the table still reaches the terminal
        raise
    _say(body + "\n")
    _say("\n".join(f"wrote {path}" for path in written))
    if skipped:
        _say(skipped)
    return 0


def _only(sweep: Sweep, kept: set[Path]) -> Sweep:
    """The sweep with the jobs that passed --filter (missing ones only without filters)."""
    return Sweep(sweep.path, sweep.sweeper, [job for job in sweep.jobs if job.path in kept], sweep.optuna)


def _write(
    out: Path, keys: list[str], rows: list[Row], groups: list[Group], body: str, where: str, plots: bool
) -> tuple[list[Path], str]:
    """Write report.csv, the figures (unless matplotlib is missing) and report.md; the paths and the skip line."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.csv"]
    write_csv(keys, rows, written[0])
    skipped, figures = "", []
    if plots:
        try:
            from metalearn.report.plots import write_plots

            figures = write_plots(groups, rows, out)
        except ImportError:
            skipped = MISSING_MATPLOTLIB
    images = "".join(f"\n\n![{path.stem}]({path.name})" for path in figures)
    (out / "report.md").write_text(f"# metalearn report\n\nRuns under {where}.\n\n{body}{images}\n", encoding="utf-8")
    return [out / "report.md", *written, *figures], skipped


def main(argv: list[str] | None = None) -> int:
    """Run the command on `argv` (default: sys.argv[1:]) and return its exit code for the entry point to exit
    with; errors are one `Error:` line (set HYDRA_FULL_ERROR=1 for the traceback of an unexpected one)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return report(argv)
    except KeyboardInterrupt:
        print("Interrupted by SIGINT", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" and not isinstance(exc, MetalearnError):
            raise
        message, code = one_line(exc)
        print(f"Error: {message}", file=sys.stderr)
        return code
