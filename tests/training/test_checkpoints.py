"""Checkpoints in process: atomic writes under a full disk, safe loading of bad files, NaN/Inf stops,
gradient clipping, refusing to resume with another config, and mode=eval never touching the training run."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch

from metalearn.build import build
from metalearn.cli import compose_config
from metalearn.errors import CheckpointError, ConfigError, MetalearnError
from metalearn.training.checkpoint import load_checkpoint, save_checkpoint
from metalearn.training.faults import Faults
from tests.support import TINY, run_inprocess

# checkpoints at 3, 6; validation at 3, 6; rows at 2, 3, 4, 6
RUN = [
    *TINY,
    "trainer.iterations=6",
    "trainer.val_interval=3",
    "trainer.log_interval=2",
    "trainer.checkpoint_interval=3",
]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    run_inprocess(run_dir, *RUN)
    return run_dir


@pytest.fixture
def stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run whose disk filled up while writing last.pt at iteration 6."""
    run_dir = tmp_path / "run"
    monkeypatch.setenv("METALEARN_TEST_FAIL_AT", "checkpoint:6")
    with pytest.raises(CheckpointError) as err:
        run_inprocess(run_dir, *RUN)
    message = str(err.value)
    assert message.startswith(
        f"cannot write {run_dir / 'checkpoints' / 'last.pt'} at iteration 6: No space left on device"
    )
    assert "checkpoints/last.pt (iteration 3) is intact" in message and f"metalearn resume={run_dir}" in message
    monkeypatch.delenv("METALEARN_TEST_FAIL_AT")
    return run_dir


# --- full disk: the previous outputs stay intact, and the run resumes ---------------------------------
def test_full_disk_during_checkpoint_keeps_last_and_resumes(stopped: Path, trained: Path) -> None:
    assert load_checkpoint(stopped / "checkpoints" / "last.pt")["iteration"] == 3
    assert not list((stopped / "checkpoints").glob(".*.tmp"))  # the half-written temporary file was removed
    assert not (stopped / "results.json").exists()
    result = run_inprocess(stopped, "trainer.resume=true", "trainer.progress=false")
    assert result["iterations"] == 6 and (stopped / "results.json").exists()
    assert [r["iteration"] for r in rows(stopped)] == [2, 3, 4, 6] and rows(stopped) == rows(trained)


def rows(run_dir: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(x).items() if k != "elapsed_s"}
        for x in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]


def test_failure_before_the_first_checkpoint_restarts_from_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trained: Path
) -> None:
    monkeypatch.setenv("METALEARN_TEST_FAIL_AT", "checkpoint:3")
    with pytest.raises(
        CheckpointError, match="at iteration 3: No space left on device; no checkpoint had been written yet"
    ):
        run_inprocess(tmp_path / "run", *RUN)
    assert rows(tmp_path / "run")  # rows without a checkpoint: a resume starts over and rewrites them
    monkeypatch.delenv("METALEARN_TEST_FAIL_AT")
    run_inprocess(tmp_path / "run", *RUN, "trainer.resume=true")
    assert rows(tmp_path / "run") == rows(trained)


def test_full_disk_during_metrics_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METALEARN_TEST_FAIL_AT", "metrics:4")
    with pytest.raises(
        CheckpointError,
        match=r"metrics.jsonl at iteration 4: No space left on device; checkpoints/last.pt \(iteration 3\)",
    ):
        run_inprocess(tmp_path / "run", *RUN)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["iteration"] == 3


def test_atomic_save_failure_leaves_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    faults = Faults(fail="checkpoint:2")
    save_checkpoint(path, midway=lambda: faults.mid_write("checkpoint", 1, path), iteration=1, value=torch.ones(3))
    with pytest.raises(OSError):
        save_checkpoint(path, midway=lambda: faults.mid_write("checkpoint", 2, path), iteration=2, value=torch.zeros(3))
    assert load_checkpoint(path)["iteration"] == 1 and list(tmp_path.iterdir()) == [path]


# --- resume refusals -----------------------------------------------------------------------------------
def test_resume_refuses_a_different_config_naming_the_keys(stopped: Path) -> None:
    before = digest(stopped)
    with pytest.raises(ConfigError) as err:
        run_inprocess(stopped, "trainer.resume=true", "trainer.lr=0.01", "algorithm=maml", "sampler.k_shot=1", "seed=0")
    message = str(err.value)
    assert message.startswith(f"cannot resume {stopped / 'checkpoints' / 'last.pt'} with a different config: ")
    assert "trainer.lr=0.01 (the run used 0.001)" in message and "algorithm='maml' (the run used 'protonet')" in message
    assert "k_shot" not in message and "seed" not in message  # overrides equal to the run's values are fine
    assert digest(stopped) == before  # refused before touching anything


def test_resume_refuses_an_edited_metrics_file(stopped: Path) -> None:
    metrics = stopped / "metrics.jsonl"
    metrics.write_text(metrics.read_text().splitlines()[0] + "\n")
    with pytest.raises(CheckpointError, match="does not match the checkpoint"):
        run_inprocess(stopped, "trainer.resume=true")


def test_resume_of_a_finished_run_and_reuse_of_a_run_dir_are_refused(trained: Path) -> None:
    before = digest(trained)
    with pytest.raises(MetalearnError, match="has already finished"):
        run_inprocess(trained, "trainer.resume=true")
    with pytest.raises(MetalearnError, match="already holds a run's outputs"):
        run_inprocess(trained, *RUN)
    with pytest.raises(ConfigError, match="continues in its own run directory"):
        run_inprocess(trained.parent / "elsewhere", f"resume={trained}")
    assert digest(trained) == before


# --- safe loading ------------------------------------------------------------------------------------
class _Evil:
    def __reduce__(self):  # what weights_only=True refuses to run
        return (print, ("code ran",))


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p.write_text("not a checkpoint"), "cannot be read: it is truncated, corrupt or not a checkpoint"),
        (
            lambda p: p.write_bytes(pickle.dumps(_Evil(), protocol=2)),
            "cannot be read: it is truncated, corrupt or not a checkpoint",
        ),
        (lambda p: torch.save({"weights": torch.ones(2)}, p), "is not a metalearn checkpoint"),
        (lambda p: torch.save([1, 2], p), "is not a metalearn checkpoint"),
        (lambda p: torch.save({"format": "metalearn-checkpoint", "version": 99}, p), "has format version 99"),
        (lambda p: None, "does not exist"),
    ],
    ids=["text", "pickle-code", "foreign-dict", "list", "future-version", "missing"],
)
def test_bad_checkpoint_files(tmp_path: Path, make, expected: str) -> None:
    path = tmp_path / "model.pt"
    make(path)
    with pytest.raises(CheckpointError, match=expected) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_truncated_checkpoint_in_eval_mode(tmp_path: Path, trained: Path) -> None:
    good = (trained / "checkpoints" / "best.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=f"checkpoint {cut} cannot be read: it is truncated"):
        run_inprocess(tmp_path / "eval", "mode=eval", f"checkpoint={cut}")
    assert not (tmp_path / "eval").exists()


def test_checkpoint_of_another_model_names_what_differs(tmp_path: Path, trained: Path) -> None:
    best = trained / "checkpoints" / "best.pt"
    with pytest.raises(CheckpointError) as err:
        run_inprocess(tmp_path / "eval", "mode=eval", f"checkpoint={best}", "model.hidden_channels=4")
    message = str(err.value)
    assert message.startswith(f"checkpoint {best} does not fit this model/algorithm: ")
    assert "backbone.encoder.0.0.weight has shape [8, 1, 3, 3] in the checkpoint but [4, 1, 3, 3] here" in message
    blob = load_checkpoint(best)
    del blob["optimizer"]
    partial = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(partial, **blob)
    with pytest.raises(CheckpointError, match="cannot be used to resume training: it has no optimizer"):
        run_inprocess(tmp_path, f"resume={partial}")


def test_eval_writes_only_its_own_directory(tmp_path: Path, trained: Path) -> None:
    before = digest(trained)
    result = run_inprocess(tmp_path / "eval", "mode=eval", f"checkpoint={trained}/checkpoints/best.pt")
    assert result["mean"] == json.loads((trained / "results.json").read_text())["mean"]
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["results.json"]
    with pytest.raises(MetalearnError, match="already holds a run's outputs"):  # never into the training run
        run_inprocess(trained, "mode=eval", f"checkpoint={trained}/checkpoints/best.pt")
    assert digest(trained) == before


# --- numerics ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault, what, extra",
    [
        ("loss:5", "the ProtoNet loss is nan", []),
        ("grad:5", "a ProtoNet gradient is NaN or infinite", []),
        (
            "grad:5",
            "a MAML gradient is NaN or infinite",
            ["algorithm=maml", "algorithm.batching=threads"],
        ),  # grads handed over
    ],
)
def test_nan_stops_training_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, what: str, extra: list[str]
) -> None:
    monkeypatch.setenv("METALEARN_TEST_NAN_AT", fault)
    with pytest.raises(MetalearnError) as err:
        run_inprocess(tmp_path / "run", *RUN, *extra)
    assert str(err.value).startswith(f"training diverged at iteration 5: {what}; the last good checkpoint is")
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert last["iteration"] == 3
    assert all(torch.isfinite(t).all() for t in last["learner"].values() if t.is_floating_point())


def test_real_divergence_is_caught(tmp_path: Path) -> None:
    with pytest.raises(MetalearnError, match=r"training diverged at iteration \d+: .*ProtoNet"):
        run_inprocess(tmp_path / "run", *RUN, "trainer.optimizer=sgd", "trainer.lr=1e30")


def test_grad_clip_scales_the_gradient_to_the_limit() -> None:
    cfg, _ = compose_config([*TINY, "algorithm.batch_norm=transductive"])
    data = build(cfg.dataset)
    sampler = build(cfg.sampler, data=data)
    torch.manual_seed(0)
    learner = build(cfg.algorithm, backbone=build(cfg.model, input_shape=data.input_shape), task=data.task, n_way=5)
    batch = sampler.train_batch()
    start = [p.detach().clone() for p in learner.parameters()]
    sgd = torch.optim.SGD(learner.parameters(), lr=1.0)
    learner.outer_update(learner.meta_loss(batch), sgd, grad_clip=None)
    raw = [s - p.detach() for s, p in zip(start, learner.parameters())]  # lr=1: the step is the raw gradient
    raw_norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in raw]))
    with torch.no_grad():
        for p, s in zip(learner.parameters(), start):
            p.copy_(s)
    limit = float(raw_norm) / 4
    learner.outer_update(learner.meta_loss(batch), sgd, grad_clip=limit)
    clipped = [s - p.detach() for s, p in zip(start, learner.parameters())]
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in clipped]))
    assert norm == pytest.approx(limit, rel=1e-4)
    for c, r in zip(clipped, raw):  # the same direction, scaled by limit / |g|
        torch.testing.assert_close(c, r * (limit / raw_norm), rtol=1e-3, atol=1e-6)


def test_resume_from_best_rewinds_consistently(stopped: Path, trained: Path) -> None:
    best = load_checkpoint(stopped / "checkpoints" / "best.pt")
    run_inprocess(stopped, f"resume={stopped}/checkpoints/best.pt", "trainer.progress=false")
    assert rows(stopped) == rows(trained)
    assert load_checkpoint(stopped / "checkpoints" / "last.pt")["iteration"] == 6 >= best["iteration"]
