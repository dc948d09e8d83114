"""A user's own model and algorithm, from a package outside metalearn, plugged in through --config-dir."""

from __future__ import annotations

import json
import textwrap

import pytest

pytestmark = pytest.mark.slow

PACKAGE = '''
import math
from dataclasses import dataclass

import torch
from torch import nn

from metalearn.algorithms.base import MetaLearner, StepOutput, task_loss
from metalearn.errors import ConfigError


class TinyNet(nn.Module):
    def __init__(self, input_shape, width=16):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU())
        self.out_features = width

    def forward(self, x):
        return self.layers(x)


@dataclass
class CentroidConfig:
    _target_: str = "mypkg.Centroid"
    temperature: float = 1.0

    def check(self, prefix):
        if not self.temperature > 0:
            raise ConfigError(f"{prefix}.temperature={self.temperature} is invalid: must be greater than 0")


class Centroid(MetaLearner):
    """Nearest class mean with scaled negative squared distances (ProtoNet's maths, a temperature added)."""

    tasks = ("classification",)
    config_schema = CentroidConfig

    def __init__(self, backbone, task, n_way, temperature=1.0):
        super().__init__(backbone, task, n_way)
        self.temperature = temperature

    def predict_batch(self, batch):
        out = []
        for e in batch.episodes():
            z = self.backbone(torch.cat([e.support_x, e.query_x]))
            s, q = z[: len(e.support_x)], z[len(e.support_x):]
            means = torch.stack([s[e.support_y == c].mean(0) for c in range(self.n_way)])
            out.append(-(q[:, None] - means[None]).pow(2).sum(-1) / self.temperature)
        return torch.stack(out)

    def meta_loss(self, batch):
        logits = self.predict_batch(batch)
        losses = torch.stack([task_loss(lg, y, self.task) for lg, y in zip(logits, batch.query_y)])
        return StepOutput(losses.mean(), self.step_metrics(losses.detach(), logits, batch.query_y))
'''


@pytest.fixture(scope="module")
def user_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    (root / "mypkg").mkdir()
    (root / "mypkg" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    (root / "conf" / "model").mkdir(parents=True)
    (root / "conf" / "algorithm").mkdir(parents=True)
    (root / "conf" / "model" / "tiny.yaml").write_text("_target_: mypkg.TinyNet\nwidth: 8\n")
    (root / "conf" / "algorithm" / "centroid.yaml").write_text("_target_: mypkg.Centroid\ntemperature: 2.0\n")
    return root


def run_user(cli, root, tiny, *args):
    """metalearn with the user's package importable and their configs added; the tiny preset minus its Conv4 key."""
    preset = [o for o in tiny if not o.startswith("model.")]
    return cli("--config-dir", str(root / "conf"), *preset, *args, env={"PYTHONPATH": str(root)})


def test_a_users_model_and_algorithm_train_and_report(cli, tiny, user_setup, tmp_path):
    result = run_user(cli, user_setup, tiny, "model=tiny", "algorithm=centroid", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (results["algorithm"], results["model"]) == ("centroid", "tiny")
    assert 0 <= results["mean"] <= 1 and results["episodes"] == 8


@pytest.mark.parametrize(
    "override, message",
    [
        ("+model.depth=3", "Error: model.depth is not a parameter of mypkg.TinyNet; it accepts: width"),
        ("algorithm.temperature=-1", "Error: algorithm.temperature=-1.0 is invalid: must be greater than 0"),
        ("model._target_=mypkg.Missing", "Error: model._target_='mypkg.Missing' cannot be imported"),
    ],
)
def test_a_users_keys_are_checked_against_signature_or_schema(cli, tiny, user_setup, tmp_path, override, message):
    result = run_user(cli, user_setup, tiny, "model=tiny", "algorithm=centroid", override, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr
