"""The `logger` group: every backend receives exactly the metrics.jsonl rows (same keys, same values), stays
consistent with metrics.jsonl across a stop and resume, and a missing optional package is one line."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from metalearn.build import build
from metalearn.cli import compose_config
from metalearn.config import validate_config
from metalearn.errors import CheckpointError, ConfigError
from metalearn.seeding import seed_everything
from metalearn.training.checkpoint import load_checkpoint
from metalearn.training.faults import Faults
from metalearn.training.loggers import CsvLogger, build_logger, flatten, read_rows
from tests.support import TINY

# checkpoints at 3, 6; validation at 3, 6; rows at 2, 3, 4, 6
RUN = [
    *TINY,
    "trainer.iterations=6",
    "trainer.val_interval=3",
    "trainer.log_interval=2",
    "trainer.checkpoint_interval=3",
]
RESULTS = {"metric": "accuracy", "mean": 0.8125, "ci95": 0.0625, "episodes": 8}  # as results.json holds them


def train(run_dir: Path, *overrides: str, resume: bool = False, fail: str | None = None) -> dict[str, Any]:
    """The trainer as metalearn.run drives it, with the logger the config chooses; returns the resolved config.
    `fail="checkpoint:6"` stops the run with a full disk while it writes last.pt at iteration 6."""
    cfg, choices = compose_config([*RUN, *overrides])
    cfg = validate_config(cfg)
    seed_everything(cfg.seed, False)
    data = build(cfg.dataset)
    sampler = build(cfg.sampler, data=data)
    backbone = build(cfg.model, input_shape=data.input_shape)
    learner = build(cfg.algorithm, backbone=backbone, task=data.task, n_way=cfg.sampler.n_way)
    logger = build_logger(cfg.logger, run_dir, cfg)
    last = run_dir / "checkpoints" / "last.pt"
    blob = load_checkpoint(last) if resume else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build(cfg.trainer).fit(
            learner,
            sampler,
            run_dir,
            OmegaConf.to_yaml(cfg, resolve=True),
            choices,
            resume_from=blob,
            resume_path=last if resume else None,
            faults=Faults(fail=fail),
            logger=logger,
        )
    except CheckpointError:
        logger.close()
        raise
    finally:
        torch.set_num_threads(threads)
    logger.finish(RESULTS)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def stopped_and_resumed(run_dir: Path, *overrides: str) -> dict[str, Any]:
    """A run stopped by a full disk at iteration 6 (its rows at 4 and 6 are past last.pt, at 3), then resumed."""
    with pytest.raises(CheckpointError):
        train(run_dir, *overrides, fail="checkpoint:6")
    assert [r["iteration"] for r in read_rows(run_dir / "metrics.jsonl")] == [2, 3, 4, 6]
    time.sleep(1.05 - time.time() % 1)  # event files are named by the second: the resumed session's sorts later
    return train(run_dir, *overrides, resume=True)


# --- TensorBoard ------------------------------------------------------------------------------------------
def events(run_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    return accumulator.Reload()


def assert_scalars_equal_rows(run_dir: Path) -> None:
    rows = read_rows(run_dir / "metrics.jsonl")
    acc = events(run_dir)
    keys = sorted({k for row in rows for k in row} - {"iteration"})
    assert sorted(set(acc.Tags()["scalars"]) - {"test_accuracy", "test_accuracy_ci95"}) == keys
    for key in keys:
        want = [(row["iteration"], row[key]) for row in rows if key in row]
        got = [(e.step, e.value) for e in acc.Scalars(key)]
        assert [s for s, _ in got] == [s for s, _ in want], key  # each step once: nothing duplicated
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6), key  # float32


def test_tensorboard_holds_the_jsonl_rows_the_config_and_hparams(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    config = train(tmp_path, "logger=tensorboard")
    assert [r["iteration"] for r in read_rows(tmp_path / "metrics.jsonl")] == [2, 3, 4, 6]
    assert_scalars_equal_rows(tmp_path)
    acc = events(tmp_path)
    (text,) = acc.Tensors("config/text_summary")
    shown = text.tensor_proto.string_val[0].decode()
    assert shown.startswith("```yaml\n") and yaml.safe_load(shown[len("```yaml\n") : -3]) == config
    assert [(e.step, e.value) for e in acc.Scalars("test_accuracy")] == [(6, RESULTS["mean"])]

    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["trainer.lr"].number_value == pytest.approx(config["trainer"]["lr"])
    assert hparams["algorithm._target_"].string_value == config["algorithm"]["_target_"]
    assert "checkpoint" not in hparams  # None: not a scalar
    assert set(hparams) <= set(flatten(config))


def test_tensorboard_after_a_resume_shows_each_iteration_once(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    stopped_and_resumed(tmp_path, "logger=tensorboard")
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 3  # 2 sessions, then hparams
    assert_scalars_equal_rows(tmp_path)  # steps 4 and 6 of the first session are purged; values the resumed ones
    assert len(events(tmp_path).Tensors("config/text_summary")) == 1


# --- CSV --------------------------------------------------------------------------------------------------
def csv_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: json.loads(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def test_csv_rows_equal_the_jsonl_rows_after_a_resume(tmp_path: Path) -> None:
    stopped_and_resumed(tmp_path, "logger=csv")
    rows = read_rows(tmp_path / "metrics.jsonl")
    assert [r["iteration"] for r in rows] == [2, 3, 4, 6]
    assert csv_rows(tmp_path / "metrics.csv") == rows  # the same floats, to the last digit
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == list(dict.fromkeys(k for r in rows for k in r))


def test_csv_is_rebuilt_from_jsonl_when_a_row_was_lost(tmp_path: Path) -> None:
    jsonl = tmp_path / "metrics.jsonl"
    rows = [
        {"iteration": 2, "train_loss": 1.25, "elapsed_s": 0.5},
        {"iteration": 3, "val_accuracy": 0.1 + 0.2, "val_accuracy_ci95": 1e-17, "elapsed_s": 0.75},
        {"iteration": 4, "train_loss": 0.9999999999999999, "elapsed_s": 1.0},
    ]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    logger = CsvLogger(tmp_path)
    logger.start(1)
    assert csv_rows(tmp_path / "metrics.csv") == rows[:2]
    with open(jsonl, "a") as handle:  # a row the process wrote to metrics.jsonl, then was killed before the csv
        handle.write(json.dumps(rows[2]) + "\n")
    CsvLogger(tmp_path).start(5)  # the next session starts from metrics.jsonl
    assert csv_rows(tmp_path / "metrics.csv") == rows
    jsonl.write_text("")
    CsvLogger(tmp_path).start(1)
    assert (tmp_path / "metrics.csv").read_text() == ""


# --- the config and the optional packages ------------------------------------------------------------------
def test_jsonl_is_the_default_and_writes_no_other_file(tmp_path: Path) -> None:
    train(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "metrics.jsonl"]


@pytest.mark.parametrize(
    "option, modules, extra",
    [
        ("tensorboard", ["tensorboard", "torch.utils.tensorboard"], "tensorboard"),
        ("wandb", ["wandb"], "wandb"),
        ("mlflow", ["mlflow", "mlflow.tracking", "mlflow.entities"], "mlflow"),
    ],
)
def test_a_missing_package_is_one_line_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, modules: list[str], extra: str
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like to `import`
    cfg = validate_config(compose_config([f"logger={option}"])[0])
    with pytest.raises(ConfigError) as info:
        build_logger(cfg.logger, tmp_path, cfg)
    assert str(info.value) == f'logger={option} needs the {extra} package: pip install "metalearn[{extra}]"'
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_logger_keys_are_checked_and_an_older_config_without_logger_means_jsonl() -> None:
    with pytest.raises(ConfigError, match=r"logger.mode='upload' is invalid: must be one of offline, online"):
        validate_config(compose_config(["logger=wandb", "logger.mode=upload"])[0])
    with pytest.raises(ConfigError, match="logger.project is not a known key"):
        validate_config(compose_config(["logger=csv", "+logger.project=x"])[0])
    saved = OmegaConf.to_container(compose_config([])[0])
    del saved["logger"]  # type: ignore[arg-type,union-attr]  # a checkpoint's config from before the logger group
    cfg = validate_config(OmegaConf.create(saved))
    assert cfg.logger == {"_target_": "metalearn.training.loggers.JsonlLogger"}


# --- wandb and mlflow: offline / local, when installed -------------------------------------------------------
ROWS = [
    {"iteration": 2, "train_loss": 1.5, "train_accuracy": 0.25, "elapsed_s": 0.125},
    {"iteration": 3, "val_accuracy": 0.3125, "val_accuracy_ci95": 0.0625, "elapsed_s": 0.25},
]


def fed(option: str, run_dir: Path, *overrides: str) -> None:
    cfg = validate_config(compose_config([f"logger={option}", *overrides])[0])
    logger = build_logger(cfg.logger, run_dir, cfg)
    logger.start(1)
    for row in ROWS:
        logger.log(row)
    logger.finish(RESULTS)


def test_mlflow_run_in_the_run_directory(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    fed("mlflow", tmp_path)
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    run = client.get_run((tmp_path / "mlflow-run-id").read_text().strip())
    assert run.info.status == "FINISHED" and run.data.params["trainer.lr"] == "0.001"
    for key in ("train_loss", "val_accuracy", "elapsed_s"):
        want = [(r["iteration"], r[key]) for r in ROWS if key in r]
        assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)] == want
    assert run.data.metrics["test_accuracy"] == RESULTS["mean"]


def test_wandb_offline_run_in_the_run_directory(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    pytest.importorskip("wandb")
    fed("wandb", tmp_path)
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert capfd.readouterr().out == ""  # stdout carries only metalearn's result line
