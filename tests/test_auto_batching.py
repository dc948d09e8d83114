"""`batching=auto` measures once, and its choice travels in checkpoints (exact resume, no re-timing)."""

from __future__ import annotations

import torch

from metalearn.algorithms.maml import MAML
from metalearn.algorithms.reptile import Reptile
from metalearn.models.mlp import MLP
from metalearn.training.checkpoint import load_checkpoint, save_checkpoint


def test_auto_choice_is_saved_and_restored(tmp_path):
    learner = MAML(MLP((1,), [8]), "regression", 1, batching="auto")
    calls: list[str] = []
    assert learner.pick_batching("train", calls.append) in ("vmap", "loop")
    assert sorted(set(calls)) == ["loop", "vmap"]  # both paths were run to time them
    chosen = learner.auto_batching.choice["train"]
    save_checkpoint(tmp_path / "c.pt", learner=learner.state_dict())
    restored = MAML(MLP((1,), [8]), "regression", 1, batching="auto")
    restored.load_state_dict(load_checkpoint(tmp_path / "c.pt")["learner"])
    again: list[str] = []
    assert restored.pick_batching("train", again.append) == chosen
    assert again == []  # restored, not re-measured


def test_reptile_keeps_its_choice_too():
    learner = Reptile(MLP((1,), [8]), "regression", 1, batching="auto")
    learner.auto_batching.choice = {"eval": "loop"}
    other = Reptile(MLP((1,), [8]), "regression", 1, batching="auto")
    other.load_state_dict(learner.state_dict())
    assert other.auto_batching.choice == {"eval": "loop"}
    assert torch.equal(next(other.parameters()), next(learner.parameters()))
