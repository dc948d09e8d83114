"""Property: any command line is either accepted and runs (one iteration here), or rejected with one
`Error:` line and exit code 2 — never a traceback, never a silent wrong result.

Hypothesis draws 1-4 overrides from valid and invalid values of many keys, unknown keys, wrong types,
unknown group options and malformed syntax, and runs the real CLI entry point (Hydra included) in this
process. derandomize=True: the same examples every run, so CI is reproducible.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import TINY, main_status

BASE = [*TINY, "trainer.iterations=1", "sampler.val_episodes=2", "sampler.test_episodes=2"]


def _values(key: str, *values: object) -> st.SearchStrategy[str]:
    return st.sampled_from([f"{key}={v}" for v in values])


OVERRIDES = st.one_of(
    _values("sampler.n_way", -1, 0, 1, 2, 3, 8, "abc", 1.5, "null"),
    _values("sampler.k_shot", -1, 0, 1, 2, 25, "x"),
    _values("sampler.q_query", 0, 1, 3, 30),
    _values("sampler.tasks_per_batch", 0, 1, 2),
    _values("sampler.eval_batch_size", -1, 0, 1, 3),
    _values("sampler.val_episodes", 0, 1, 3),
    _values("trainer.iterations", -1, 0, 1, 2),
    _values("trainer.lr", -1, 0, 1e-4, 0.01, "abc", "[1]"),
    _values("trainer.optimizer", "adam", "sgd", "rmsprop", 3),
    _values("trainer.scheduler", "none", "cosine", "step", "linear"),
    _values("trainer.lr_step_size", 0, 1),
    _values("trainer.lr_gamma", 0, 0.5, -1),
    _values("sampler.train_n_way", "null", 1, 3, 8, "x"),
    _values("sampler.train_k_shot", 0, 2, 25),
    _values("trainer.grad_clip", "null", 0, 0.5, -1, "x"),
    _values("trainer.weight_decay", -0.1, 0, 0.01),
    _values("trainer.min_lr", -1, 0),
    _values("trainer.log_interval", -1, 0, 1),
    _values("trainer.val_interval", 0, 1),
    _values("trainer.checkpoint_interval", 0, 1),
    _values("trainer.progress", "false", "maybe"),
    _values("algorithm", "protonet", "maml", "fomaml", "matchingnet", "relationnet", "baseline++", "bogus"),
    _values("sampler", "episodic", "batches"),
    _values("algorithm.distance", "euclidean", "cosine", "manhattan"),
    _values("algorithm.batch_norm", "running", "transductive", "bogus"),
    _values("model", "conv4", "conv4_strided", "mlp", "resnet12", "transformer"),
    _values("model.downsample", "pool", "stride", "max"),
    _values("model.pool_blocks", -1, 2, "null"),
    _values("model.hidden_channels", 0, 4, "x"),
    _values("model.num_blocks", 0, 2, 6),
    _values("dataset", "glyphs", "nonesuch"),
    _values("dataset.image_size", 4, 12),
    _values("dataset.jitter", -0.1, 0, 0.05),
    _values("dataset.images_per_class", 1, 5),
    _values("device", "cpu", "tpu"),
    _values("device.deterministic", "true", 2),
    _values("seed", -1, 3, "abc", "null"),
    _values("mode", "train", "eval", "predict"),
    # quoted numbers and booleans run as what they say; NaN, infinity and absurd sizes are refused
    _values("sampler.n_way", "'3'", "'five'"),
    _values("trainer.lr", "'0.01'", "nan", "inf", "-inf"),
    _values("trainer.progress", "'false'", "'true'"),
    _values("trainer.iterations", "'1'", "10000000000"),
    _values("dataset.jitter", "nan", "inf"),
    _values("trainer.weight_decay", "inf"),
    _values("sampler.test_episodes", "1000000000000"),
    _values("model.hidden_channels", "1000000000"),
    _values("seed", "1180591620717411303424", "1e3"),
    # interpolations: of other keys, of resolvers, of nothing
    _values("sampler.n_way", "${seed}", "${sampler.k_shot}"),
    _values("trainer.lr", "${now:%Y}"),
    _values("trainer.iterations", "${oc.env:HOME}", "${missing_key}"),
    st.sampled_from(
        [
            "trainer.bogus=1",
            "+trainer.bogus=1",
            "+bogus=1",
            "bogus=1",
            "sampler.n_way=[1",
            "=3",
            "trainer.lr",
            "~trainer.lr",
            "checkpoint=/nonexistent.pt",
            "resume=/nonexistent",
        ]
    ),
)

_counter = itertools.count()


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, overrides: list[str]) -> str:
    """'accepted' or 'rejected'; fails the test on anything else."""
    run_dir = tmp_path / f"ex{next(_counter)}"
    monkeypatch.setattr(sys, "argv", ["metalearn", *BASE, *overrides, f"hydra.run.dir={run_dir}"])
    code = main_status()
    err = capsys.readouterr().err
    assert "Traceback" not in err, (overrides, err)
    if code == 0:
        results = json.loads((run_dir / "results.json").read_text())
        assert math.isfinite(results["mean"]) and results["episodes"] == 2, (overrides, results)
        assert (run_dir / "checkpoints" / "last.pt").is_file()
        return "accepted"
    assert code == 2, (overrides, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), (overrides, err)
    assert not (run_dir / "results.json").exists()
    return "rejected"


def test_random_overrides_run_or_fail_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    outcomes: dict[str, set[tuple[str, ...]]] = {"accepted": set(), "rejected": set()}
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)

    @settings(
        max_examples=75,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(OVERRIDES, min_size=1, max_size=4))
    def check(overrides: list[str]) -> None:
        outcomes[_run(tmp_path, monkeypatch, capsys, overrides)].add(tuple(overrides))

    try:
        check()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    print(f"accepted {len(outcomes['accepted'])}, rejected {len(outcomes['rejected'])} distinct command lines")
    assert len(outcomes["accepted"]) >= 5 and len(outcomes["rejected"]) >= 20
    tried = [" ".join(line) for lines in outcomes.values() for line in lines]
    for kind in ("nan", "inf", "'", "${", "000000000"):  # quoted values, non-finite, huge, interpolations
        assert any(kind in line for line in tried), f"no command line with {kind!r} was tried"
