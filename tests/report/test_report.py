"""`metalearn report` on hand-written run directories: the groups, their numbers against the runs' own results,
the CSV, the figures, --by, --filter, the runs left out of the table, and Optuna sweeps."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest
from PIL import Image

from metalearn.errors import MetalearnError
from metalearn.report import main, report
from metalearn.report.discover import find
from metalearn.report.grouping import group_runs, varying_keys
from metalearn.report.plots import mean_curve
from tests.report.rundirs import (
    OPTUNA_SWEEPER,
    SWEEP,
    choices,
    config,
    write_algorithm_sweep,
    write_run,
    write_sweep,
)

T_2 = 4.302652729911275  # t_{0.975} with 2 degrees of freedom


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return write_algorithm_sweep(tmp_path / "multirun" / "2026-12-01" / "08-00-00")


def table(text: str, first: str) -> list[list[str]]:
    """The cells of the Markdown table in `text` whose header starts with `first`, header included, rule left out."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first} "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return [rows[0], *rows[2:]]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_groups_are_the_algorithms_with_their_seeds_together(sweep: Path) -> None:
    runs, _ = find([sweep])
    finished = [run for run in runs if run.finished]
    assert len(runs) == 8 and len(finished) == 6
    # seeds, paths and algorithm._target_ (which follows from the algorithm) do not split the groups
    assert varying_keys(finished) == ["algorithm"]
    groups = group_runs(finished, ["algorithm"])
    assert [(g.values, len(g.runs)) for g in groups] == [(("maml",), 3), (("protonet",), 3)]
    # the config read from .hydra/config.yaml (protonet's runs) has its interpolations resolved
    assert [run.config["sampler.seed"] for run in groups[1].runs] == [0, 1, 2]


def test_table_numbers_are_the_runs_own_results(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report([str(sweep), "--no-plots"]) == 0
    rows = {row["algorithm"]: row for row in read_csv(sweep / "report.csv")}
    assert set(rows) == {"maml", "protonet"}
    for algorithm, row in rows.items():
        jobs = [job for job, (a, _, mean) in SWEEP.items() if a == algorithm and mean is not None]
        results = [json.loads((sweep / str(job) / "results.json").read_text()) for job in jobs]
        means = [r["mean"] for r in results]
        mean = sum(means) / len(means)
        std = math.sqrt(sum((m - mean) ** 2 for m in means) / (len(means) - 1))
        assert float(row["mean"]) == pytest.approx(mean, rel=1e-12)
        assert float(row["std"]) == pytest.approx(std, rel=1e-12)
        assert float(row["ci95_seeds"]) == pytest.approx(T_2 * std / math.sqrt(3), rel=1e-9)
        assert float(row["ci95_episodes"]) == pytest.approx(sum(r["ci95"] for r in results) / 3, rel=1e-12)
        assert float(row["wall_time_s"]) == pytest.approx(sum(r["wall_time_s"] for r in results) / 3, rel=1e-12)
        assert (row["metric"], row["seeds"], row["iterations"]) == ("accuracy", "3", "10")
        assert row["runs"].split(";") == [str(sweep / str(job)) for job in jobs]
    # 0.80, 0.82, 0.84 by hand: mean 0.82, std 0.02
    assert float(rows["maml"]["mean"]) == pytest.approx(0.82, abs=1e-15)
    assert float(rows["maml"]["ci95_seeds"]) == pytest.approx(T_2 * 0.02 / math.sqrt(3), rel=1e-9)
    out = capsys.readouterr().out
    # the printed table: percentages, the t interval, aligned columns
    assert "| maml      | accuracy (%) | 82.00 ± 4.97 |       ± 3.10 |     3 |         10 |          11.0 |" in out
    assert "| protonet  | accuracy (%) | 72.00 ± 6.57 |       ± 4.10 |     3 |         10 |           4.0 |" in out
    assert len({len(line) for line in out.splitlines() if line.startswith("|")}) == 1
    assert (sweep / "report.md").read_text().count("82.00 ± 4.97") == 1
    assert f"wrote {sweep / 'report.md'}\nwrote {sweep / 'report.csv'}" in out


def test_failed_unfinished_and_missing_runs_are_listed(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (sweep / "7" / ".metalearn.lock").write_text("999999999 \n")  # a claim whose process has died
    for name in ("results.json", "metrics.jsonl"):
        (sweep / "5" / name).unlink()
    (sweep / "5" / ".hydra" / "config.yaml").unlink()  # job 5 never got further than its folder
    for name in ("overrides.yaml", "hydra.yaml"):
        (sweep / "5" / ".hydra" / name).unlink()
    assert report([str(sweep), "--no-plots"]) == 0
    out = capsys.readouterr().out
    listed = out[out.index("### Not in the table") :].splitlines()
    assert listed[0] == "### Not in the table: 3 (1 failed, 1 unfinished, 1 missing)"
    assert (
        listed[2]
        == f"- failed: {sweep / '3'} [device=cpu algorithm=maml seed=3]: inner_lr must be positive (exit code 2)"
    )
    assert listed[3].startswith(f"- unfinished: {sweep / '7'} [device=cpu algorithm=protonet seed=3]: no results.json")
    assert listed[3].endswith("last validation at iteration 5")
    assert listed[4].startswith(f"- missing: {sweep / '5'} [device=cpu algorithm=protonet seed=1]: never started")
    assert [row["seeds"] for row in read_csv(sweep / "report.csv")] == ["3", "2"]


def test_a_run_held_by_a_live_process_is_running(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import platform

    (sweep / "7" / ".metalearn.lock").write_text(f"{os.getpid()} {platform.node()}\n")
    report([str(sweep), "--no-plots"])
    assert f"- running: {sweep / '7'} [device=cpu algorithm=protonet seed=3]: held by process {os.getpid()}" in (
        capsys.readouterr().out
    )


def test_figures_have_the_fixed_size(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "figures"
    assert report([str(sweep), "--out", str(out_dir)]) == 0
    for name in ("val_curves.png", "val_curves_time.png", "test_metric.png"):
        with Image.open(out_dir / name) as image:
            assert (image.format, image.size) == ("PNG", (640, 400))
    assert "![val_curves](val_curves.png)" in (out_dir / "report.md").read_text()
    assert not (sweep / "report.csv").exists()
    assert f"wrote {out_dir / 'test_metric.png'}" in capsys.readouterr().out


def test_validation_curve_is_the_mean_over_seeds(sweep: Path) -> None:
    runs, _ = find([sweep])
    maml = group_runs([run for run in runs if run.finished], ["algorithm"])[0]
    # each maml job validates at 5 and 10 at 0.5 s and 1.0 s: mean - 0.1, then its test mean (0.80, 0.82, 0.84)
    (i5, m5, h5), (i10, m10, h10) = mean_curve(maml)
    assert (i5, i10) == (5.0, 10.0)
    assert (m5, m10) == (pytest.approx(0.72), pytest.approx(0.82))
    assert h5 == pytest.approx(T_2 * 0.02 / math.sqrt(3), rel=1e-9) and h10 == pytest.approx(h5, rel=1e-9)
    assert [p[0] for p in mean_curve(maml, "elapsed")] == [0.5, 1.0]


def test_without_matplotlib_the_table_is_written_and_plots_skipped(
    sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    assert report([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == 'plots skipped: matplotlib is missing; pip install "metalearn[report]"'
    assert (sweep / "report.csv").is_file() and (sweep / "report.md").is_file()
    assert not (sweep / "val_curves.png").exists()


def test_by_and_filter_change_the_grouping(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --by seed: the algorithms together, one group per seed
    report([str(sweep), "--no-plots", "--by", "seed", "--out", str(tmp_path / "by-seed")])
    rows = read_csv(tmp_path / "by-seed" / "report.csv")
    assert [(row["seed"], row["seeds"]) for row in rows] == [("0", "2"), ("1", "2"), ("2", "2")]
    assert float(rows[0]["mean"]) == pytest.approx((0.80 + 0.70) / 2)
    # two keys: one group per run
    report([str(sweep), "--no-plots", "--by", "algorithm", "--by", "seed", "--out", str(tmp_path / "both")])
    assert len(read_csv(tmp_path / "both" / "report.csv")) == 6
    # --filter keeps maml only; its failed job is still listed, protonet's unfinished one is not
    capsys.readouterr()
    report([str(sweep), "--no-plots", "--filter", "algorithm=maml", "--out", str(tmp_path / "maml")])
    out = capsys.readouterr().out
    rows = read_csv(tmp_path / "maml" / "report.csv")
    assert len(rows) == 1 and rows[0]["seeds"] == "3" and float(rows[0]["mean"]) == pytest.approx(0.82)
    assert "- failed:" in out and "- unfinished:" not in out
    # values compare as numbers: 1e-3 is 0.001; two values of one key keep either
    report(
        [
            str(sweep),
            "--no-plots",
            "--filter",
            "trainer.lr=1e-3",
            "--filter",
            "seed=0",
            "--filter",
            "seed=2",
            "--by",
            "algorithm",
            "--out",
            str(tmp_path / "seeds"),
        ]
    )
    assert [row["seeds"] for row in read_csv(tmp_path / "seeds" / "report.csv")] == ["2", "2"]


def test_a_varying_key_within_an_algorithm_is_a_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # algorithm=maml algorithm.inner_lr=0.1,0.4 and protonet: inner_lr is kept (missing for protonet), the
    # targets go; a different cache folder or device never splits a group
    specs = [("maml", 0.1, 0, 0.6), ("maml", 0.1, 1, 0.62), ("maml", 0.4, 0, 0.7), ("protonet", None, 0, 0.5)]
    for n, (algorithm, lr, seed, mean) in enumerate(specs):
        cfg = config(algorithm, seed, cache_dir=f"/tmp/cache{n}")
        cfg["device"]["name"] = "cuda" if n % 2 else "cpu"
        if lr is not None:
            cfg["algorithm"]["inner_lr"] = lr
        write_run(tmp_path / "runs" / str(n), cfg, [], choices(algorithm), mean=mean, curve=[mean])
    assert report([str(tmp_path / "runs"), "--no-plots"]) == 0
    rows = read_csv(tmp_path / "runs" / "report.csv")
    assert [(r["algorithm"], r["algorithm.inner_lr"], r["seeds"]) for r in rows] == [
        ("maml", "0.1", "2"),
        ("maml", "0.4", "1"),
        ("protonet", "", "1"),
    ]
    assert rows[1]["ci95_seeds"] == "" and rows[1]["std"] == ""
    cells = table(capsys.readouterr().out, "algorithm")
    assert cells[0][:4] == ["algorithm", "algorithm.inner_lr", "metric", "test"]
    assert [row[:5] for row in cells[1:]] == [
        ["maml", "0.1", "accuracy (%)", "61.00 ± 12.71", "± 3.00"],  # t_{0.975,1} * 0.01414 / sqrt(2)
        ["maml", "0.4", "accuracy (%)", "70.00 ± –", "± 3.00"],
        ["protonet", "–", "accuracy (%)", "50.00 ± –", "± 3.00"],
    ]


def test_regression_runs_and_an_optuna_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = write_sweep(
        tmp_path / "optuna",
        ["algorithm=maml", "algorithm.inner_lr=interval(0.001,0.1)"],
        OPTUNA_SWEEPER,
        n_trials=4,
        direction="minimize",
    )
    (sweep / "optimization_results.yaml").write_text(
        "name: optuna\nbest_params:\n  algorithm.inner_lr: 0.01\nbest_value: 0.25\n"
    )
    for job, (lr, curve, test) in enumerate(
        [(0.05, [0.9, 0.6], 0.61), (0.01, [0.5, 0.25], 0.27), (0.002, [1.2], None)]
    ):
        cfg = config("maml", 0)
        cfg["algorithm"]["inner_lr"] = lr
        overrides = ["algorithm=maml", f"algorithm.inner_lr={lr}"]
        write_run(sweep / str(job), cfg, overrides, choices("maml"), mean=test, metric="mse", curve=curve)
    assert report([str(sweep), "--no-plots"]) == 0
    out = capsys.readouterr().out
    # plain numbers with 4 significant digits
    assert [row[:3] for row in table(out, "algorithm.inner_lr")[1:]] == [
        ["0.01", "mse", "0.27 ± –"],
        ["0.05", "mse", "0.61 ± –"],
    ]
    optuna = out[out.index("### Optuna sweep") :]
    assert "Best value 0.25 with: algorithm.inner_lr=0.01" in optuna
    # trials by best validation mse, lowest first; the unfinished one has a value, the one never started none
    trials = table(optuna, "trial")
    assert trials[0][1] == "best val mse (lower is better)"
    assert trials[1:] == [
        ["1", "0.25", "finished", "algorithm.inner_lr=0.01"],
        ["0", "0.6", "finished", "algorithm.inner_lr=0.05"],
        ["2", "1.2", "unfinished", "algorithm.inner_lr=0.002"],
        ["3", "–", "missing", "–"],
    ]


def test_mixed_metrics_are_separate_groups(tmp_path: Path) -> None:
    write_run(tmp_path / "a", config("maml", 0), [], choices("maml"), mean=0.8, curve=[0.8])
    write_run(tmp_path / "b", config("maml", 1), [], choices("maml"), mean=0.3, metric="mse", curve=[0.3])
    assert report([str(tmp_path), "--no-plots", "--out", str(tmp_path / "out")]) == 0
    assert [r["metric"] for r in read_csv(tmp_path / "out" / "report.csv")] == ["accuracy", "mse"]


def test_a_single_run_directory_and_a_torn_metrics_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", config("protonet", 0), [], choices("protonet"), mean=0.7, curve=[0.6, 0.7])
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"iteration": 15, "val_accur')  # killed while writing a row
    assert report([str(run)]) == 0
    rows = read_csv(run / "report.csv")
    assert len(rows) == 1 and rows[0]["seeds"] == "1" and float(rows[0]["mean"]) == 0.7
    assert not any(key.startswith("algorithm") for key in rows[0])  # nothing varies: no key columns


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/nowhere"], "Error: {tmp}/nowhere: no such directory"),
        (["{tmp}/empty"], "Error: no metalearn run under {tmp}/empty (a run directory holds results.json, "),
        (["{sweep}", "--filter", "algorithm"], "Error: --filter 'algorithm': give KEY=VALUE"),
        (
            ["{sweep}", "--filter", "algorithm=reptile"],
            "Error: none of the 8 runs under {sweep} matches --filter (algorithm is one of: maml, protonet)",
        ),
        (["{sweep}", "--by", "sampler.n_wya"], "Error: --by sampler.n_wya: no finished run has this key"),
        (["{sweep}", "--frobnicate"], "Error: unrecognized arguments: --frobnicate (see metalearn report --help)"),
        ([], "Error: the following arguments are required: DIR"),
    ],
)
def test_bad_arguments_are_one_error_line(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main([a.format(tmp=tmp_path, sweep=sweep) for a in args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(message.format(tmp=tmp_path, sweep=sweep)), err


def test_no_finished_run_lists_them_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(
        tmp_path / "a",
        config("maml", 0),
        ["seed=0"],
        choices("maml"),
        failed={"status": "interrupted", "error": "stopped by SIGTERM"},
    )
    assert main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f"- interrupted: {tmp_path / 'a'} [seed=0]: stopped by SIGTERM" in captured.out
    assert captured.err == f"Error: none of the 1 runs under {tmp_path} has finished (listed above)\n"
    assert not (tmp_path / "report.md").exists()


def test_reading_runs_never_raises_for_their_contents(tmp_path: Path) -> None:
    (tmp_path / "bad" / ".hydra").mkdir(parents=True)
    (tmp_path / "bad" / ".hydra" / "config.yaml").write_text("a: [unclosed\n")
    (tmp_path / "bad" / "results.json").write_text('{"mean": ')
    (tmp_path / "interp" / ".hydra").mkdir(parents=True)
    (tmp_path / "interp" / ".hydra" / "config.yaml").write_text("a: ${oops:1}\nb: ${c}\nc: 3\n")
    runs, _ = find([tmp_path])
    assert [(r.path.name, r.status) for r in runs] == [("bad", "unreadable"), ("interp", "unfinished")]
    assert runs[0].message.startswith("results.json cannot be read:")
    assert runs[1].config == {"a": "${oops:1}", "b": 3, "c": 3}  # the one that cannot be resolved is kept as text


def test_an_unwritable_output_is_one_error_line(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    assert main([str(sweep), "--no-plots", "--out", str(tmp_path / "file" / "out")]) == 2
    captured = capsys.readouterr()
    assert "82.00 ± 4.97" in captured.out  # the table still reaches the terminal
    assert captured.err.startswith("Error: cannot access ") and len(captured.err.splitlines()) == 1


def test_overlapping_folders_count_each_run_once(sweep: Path, tmp_path: Path) -> None:
    runs, sweeps = find([sweep.parent, sweep, sweep / "0"])
    assert len(runs) == 8 and len(sweeps) == 1
    with pytest.raises(MetalearnError, match="no such directory"):
        report([str(sweep), str(tmp_path / "nope")])
