"""End-to-end runs of the `metalearn` command in subprocesses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import TINY, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One short training run shared by the tests below."""
    run_dir = tmp_path_factory.mktemp("train") / "run"
    result = run_cli(
        *TINY,
        "sampler.test_episodes=20",
        "trainer.iterations=20",
        "trainer.val_interval=10",
        "trainer.log_interval=5",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr
    return run_dir


def test_training_run_writes_every_output(trained_run):
    results = json.loads((trained_run / "results.json").read_text())
    assert results["metric"] == "accuracy" and results["episodes"] == 20
    assert results["n_way"] == 5 and results["k_shot"] == 1
    assert results["algorithm"] == "protonet" and results["dataset"] == "glyphs" and results["device"] == "cpu"
    assert 0.2 < results["mean"] <= 1.0 and results["ci95"] > 0 and results["wall_time_s"] > 0
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [5, 10, 15, 20]
    assert all("train_loss" in r and "train_accuracy" in r and "elapsed_s" in r for r in rows)
    assert [r["iteration"] for r in rows if "val_accuracy" in r] == [10, 20]
    assert (trained_run / "checkpoints" / "best.pt").is_file() and (trained_run / "checkpoints" / "last.pt").is_file()
    assert (trained_run / ".hydra" / "config.yaml").is_file()
    assert results["best_val_accuracy"] == max(r["val_accuracy"] for r in rows if "val_accuracy" in r)


def test_summary_line(trained_run):
    results = json.loads((trained_run / "results.json").read_text())
    pct, ci = 100 * results["mean"], 100 * results["ci95"]
    assert results["summary"] == f"test accuracy {pct:.2f}% ± {ci:.2f} (20 episodes, 5-way 1-shot)"


def test_eval_mode_reproduces_the_test_accuracy(trained_run, tmp_path):
    before = {p: p.read_bytes() for p in trained_run.rglob("*") if p.is_file()}
    result = run_cli(
        "mode=eval",
        f"checkpoint={trained_run / 'checkpoints' / 'best.pt'}",
        "trainer.progress=false",
        "device=cpu",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    assert result.returncode == 0, result.stderr
    trained = json.loads((trained_run / "results.json").read_text())
    evaluated = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert evaluated["mode"] == "eval"
    assert (evaluated["mean"], evaluated["ci95"], evaluated["episodes"]) == (
        trained["mean"],
        trained["ci95"],
        trained["episodes"],
    )
    assert evaluated["summary"] in result.stdout
    assert before == {p: p.read_bytes() for p in trained_run.rglob("*") if p.is_file()}  # training run untouched


def test_eval_mode_applies_key_overrides_and_refuses_group_switches(trained_run, tmp_path):
    ckpt = f"checkpoint={trained_run / 'checkpoints' / 'best.pt'}"
    more = run_cli(
        "mode=eval", ckpt, "sampler.test_episodes=7", "trainer.progress=false", f"hydra.run.dir={tmp_path / 'a'}"
    )
    assert more.returncode == 0, more.stderr
    assert json.loads((tmp_path / "a" / "results.json").read_text())["episodes"] == 7
    switched = run_cli("mode=eval", ckpt, "algorithm=maml", f"hydra.run.dir={tmp_path / 'b'}")
    assert switched.returncode != 0 and "takes algorithm from the checkpoint" in switched.stderr


def test_multirun_makes_one_directory_per_value(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m", *TINY, "trainer.iterations=2", "sampler.test_episodes=5", "seed=0,1", f"hydra.sweep.dir={sweep}"
    )
    assert result.returncode == 0, result.stderr
    runs = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert [p.name for p in runs] == ["0", "1"]
    seeds = [json.loads((p / "results.json").read_text())["seed"] for p in runs]
    assert seeds == [0, 1]


def test_regression_run_reports_mse(tmp_path):
    result = run_cli(
        "dataset=sinusoid",
        "model=mlp",
        "algorithm=maml",
        "algorithm.inner_lr=0.01",
        "sampler.k_shot=5",
        "sampler.q_query=10",
        "sampler.test_episodes=20",
        "sampler.val_episodes=5",
        "trainer.iterations=5",
        "trainer.progress=false",
        "device=cpu",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["metric"] == "mse" and results["n_way"] is None
    assert result.stdout.strip().endswith("(20 episodes, 5-shot)") and result.stdout.startswith("test mse ")


def test_help_lists_groups_and_options():
    result = run_cli("--help")
    assert result.returncode == 0
    for text in (
        "== Config groups ==",
        "algorithm: ",
        "protonet",
        "maml",
        "fomaml",
        "dataset: ",
        "glyphs",
        "glyph_clips",
        "sinusoid",
        "device: auto, cpu, cuda, mps",
        "model: conv4, conv4_32, conv4_strided, mlp",
    ):
        assert text in result.stdout


def test_help_is_hydras_page_without_torch(tmp_path):
    """metalearn makes the help page itself (Hydra's help command takes over a second listing the groups): the
    same page as Hydra's own, which --config-name still gets, for plain and overridden configs and an extra
    --config-dir; and --help imports no torch."""
    extra = tmp_path / "mine" / "algorithm"
    extra.mkdir(parents=True)
    (extra / "my_protonet.yaml").write_text("defaults:\n  - protonet\n  - _self_\n")
    for args in ([], ["algorithm=maml", "sampler.k_shot=5"], ["--config-dir", str(tmp_path / "mine")]):
        flags = [a for a in args if "=" not in a]
        overrides = [a for a in args if "=" in a]
        ours = run_cli(*flags, "--help", *overrides)
        hydras = run_cli(*flags, "--config-name", "config", "--help", *overrides)
        assert ours.returncode == hydras.returncode == 0, ours.stderr + hydras.stderr
        assert ours.stdout == hydras.stdout
    algorithms = (
        "anil, baseline, baseline++, fomaml, maml, maml++, maml_ppo, maml_trpo, matchingnet, metaoptnet, metasgd, "
    )
    algorithms += "my_protonet, otam, "
    assert f"algorithm: {algorithms}protonet, r2d2, relationnet, reptile, trx" in ours.stdout
    code = "import sys; from metalearn.cli import main; sys.argv = ['metalearn', '--help']; main(); print(sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'torch'" not in loaded and "config groups" in loaded.lower()


def test_console_script_works_from_another_directory(tmp_path):
    exe = shutil.which("metalearn", path=str(Path(sys.executable).parent))
    assert exe, "the metalearn console script is not installed"
    result = subprocess.run(
        [exe, *TINY, "trainer.iterations=1", "sampler.test_episodes=5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "outputs").glob("*/*/results.json"))) == 1  # outputs/DATE/TIME/ under the cwd


def test_eval_mode_reaches_the_checkpoints_algorithm_keys(tmp_path):
    train = run_cli(
        *TINY,
        "algorithm=maml",
        "algorithm.batching=loop",
        "trainer.iterations=2",
        "sampler.test_episodes=10",
        f"hydra.run.dir={tmp_path / 'train'}",
    )
    assert train.returncode == 0, train.stderr
    ckpt = f"checkpoint={tmp_path / 'train' / 'checkpoints' / 'best.pt'}"
    for name, extra in (
        ("same", ["algorithm=maml"]),
        ("set", ["algorithm.eval_inner_steps=3"]),
        ("zero", ["algorithm=maml", "algorithm.eval_inner_steps=0"]),
        ("bare", ["algorithm.eval_inner_steps=0"]),
    ):
        result = run_cli("mode=eval", ckpt, *extra, "trainer.progress=false", f"hydra.run.dir={tmp_path / name}")
        assert result.returncode == 0, result.stderr
    mean = {n: json.loads((tmp_path / n / "results.json").read_text())["mean"] for n in ("same", "set", "zero", "bare")}
    trained = json.loads((tmp_path / "train" / "results.json").read_text())["mean"]
    assert mean["same"] == mean["set"] == trained  # 3 steps is the trained config's own eval_inner_steps
    assert mean["zero"] != trained  # no adaptation: the key reached the learner
    assert mean["bare"] == mean["zero"]  # without naming algorithm=maml: composed with the checkpoint's options
    added = run_cli("mode=eval", ckpt, "+algorithm.eval_inner_steps=3", f"hydra.run.dir={tmp_path / 'plus'}")
    assert added.returncode == 2 and added.stderr.strip() == (
        "Error: algorithm.eval_inner_steps is a key already: "
        "set it with algorithm.eval_inner_steps=VALUE (without the +)"
    )


def test_debug_smoke_preset_runs_any_setup_briefly(tmp_path):
    data = [o for o in TINY if not o.startswith(("sampler.", "trainer."))]
    result = run_cli(*data, "debug=smoke", "algorithm=fomaml", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [5, 10] and all("val_accuracy" in r for r in rows)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (results["iterations"], results["episodes"], results["algorithm"]) == (10, 20, "fomaml")
