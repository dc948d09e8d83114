"""MAML-TRPO: TRPO's pieces against independent computations, the two execution paths against each other, learning
on navigation2d, and the config's refusals."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from metalearn.algorithms.maml_ppo import MAMLPPO
from metalearn.algorithms.maml_trpo import MAMLTRPO
from metalearn.algorithms.trpo import conjugate_gradient, flat, hessian_vector_product
from metalearn.cli import compose_config
from metalearn.config.validate import validate_config
from metalearn.data.navigation import Navigation2D
from metalearn.errors import ConfigError
from metalearn.models.mlp import MLP
from metalearn.sampling.tasks import TaskSampler
from metalearn.training.evaluator import evaluate
from tests.support import Identity


def tiny(batching: str = "loop", **kwargs) -> tuple[MAMLTRPO, TaskSampler]:
    torch.manual_seed(0)
    learner = MAMLTRPO(MLP((2,), [3], activation="tanh"), "reinforcement", 2, batching=batching, **kwargs)
    sampler = TaskSampler(Navigation2D(horizon=4), tasks_per_batch=2, trajectories=3, val_tasks=2, test_tasks=2)
    return learner, sampler


def test_conjugate_gradient_solves_a_positive_definite_system():
    torch.manual_seed(0)
    a = torch.randn(5, 5, dtype=torch.float64)
    h, b = a @ a.T + torch.eye(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(conjugate_gradient(lambda v: h @ v, b, 5), torch.linalg.solve(h, b))


def test_hessian_vector_products_of_the_kl_through_the_inner_step_match_finite_differences():
    """TRPO's curvature: the Hessian of the mean KL in theta, through the second-order inner step, by Pearlmutter's
    trick against central differences of the KL's gradient (float64), column by column."""
    learner, sampler = tiny()
    learner.double()
    batch = sampler.train_batch()
    batch.params = batch.params.double()
    learner.meta_loss(batch)
    collected = learner._collected
    collected.before.observations = collected.before.observations.double()
    params = [p for p in learner.parameters()]
    kl = learner.loss_and_kl(collected, True)[1]
    hvp = hessian_vector_product(kl, params, damping=0.0)
    n, eps = sum(p.numel() for p in params), 1e-5

    def kl_gradient() -> torch.Tensor:
        return flat(torch.autograd.grad(learner.loss_and_kl(collected, True)[1], params))

    basis = torch.eye(n, dtype=torch.float64)
    products = [hvp(e) for e in basis]  # before the parameters move: the products differentiate their graph
    origin = [p.detach().clone() for p in params]
    for e, product in zip(basis, products):
        columns = []
        for sign in (1, -1):
            with torch.no_grad():
                offset = 0
                for p, o in zip(params, origin):
                    p.copy_(o + sign * eps * e[offset : offset + p.numel()].view_as(p))
                    offset += p.numel()
            columns.append(kl_gradient())
        with torch.no_grad():
            for p, o in zip(params, origin):
                p.copy_(o)
        torch.testing.assert_close(product, (columns[0] - columns[1]) / (2 * eps), rtol=1e-5, atol=1e-7)


def test_hessian_vector_products_equal_columns_of_autograds_full_hessian_on_a_tiny_policy():
    """The same curvature on a policy small enough to form its whole Hessian (a linear Gaussian policy, 8
    parameters): torch.autograd.functional.hessian of the mean KL as a function of the flat parameters, through the
    second-order inner step, against the Pearlmutter products H e_i (float64)."""
    torch.manual_seed(0)
    learner = MAMLTRPO(Identity(2), "reinforcement", 2, batching="loop").double()
    sampler = TaskSampler(Navigation2D(horizon=4), tasks_per_batch=2, trajectories=3)
    batch = sampler.train_batch()
    batch.params = batch.params.double()
    learner.meta_loss(batch)
    collected = learner._collected
    collected.before.observations = collected.before.observations.double()
    theta = learner.theta()
    shapes = {n: p.shape for n, p in theta.items()}
    params = list(theta.values())  # the learner's parameters, in the order kl_of flattens them
    assert {id(p) for p in params} == {id(p) for p in learner.parameters()}
    hvp = hessian_vector_product(learner.loss_and_kl(collected, True)[1], params, damping=0.0)

    def kl_of(vector: torch.Tensor) -> torch.Tensor:
        pieces, offset = {}, 0
        for name, shape in shapes.items():
            pieces[name] = vector[offset : offset + shape.numel()].view(shape)
            offset += shape.numel()
        learner.theta = lambda detach=False: pieces  # the policy at `vector`, for this call
        try:
            return learner.loss_and_kl(collected, True)[1]
        finally:
            del learner.theta

    full = torch.autograd.functional.hessian(kl_of, flat(list(theta.values())).detach())
    assert full.shape == (8, 8) and full.abs().max() > 1e-2  # the Fisher information at the old policy, not zero
    for i, column in enumerate(torch.eye(8, dtype=torch.float64)):
        torch.testing.assert_close(hvp(column), full[:, i], rtol=1e-8, atol=1e-10)


def test_vmap_and_loop_give_the_same_rollouts_and_outer_gradient():
    grads = {}
    for batching in ("loop", "vmap"):
        learner, sampler = tiny(batching)
        out = learner.meta_loss(sampler.train_batch())
        loss, kl = learner.loss_and_kl(learner._collected, True)
        grads[batching] = (out.metrics, flat(torch.autograd.grad(loss, list(learner.parameters()))))
    assert grads["loop"][0] == pytest.approx(grads["vmap"][0], rel=1e-5)
    torch.testing.assert_close(grads["loop"][1], grads["vmap"][1], rtol=1e-4, atol=1e-6)


def test_a_short_meta_training_makes_one_step_of_adaptation_pay():
    """After a few TRPO steps on navigation2d, one policy-gradient step on a new task raises its return clearly, and
    the adapted return beats the untrained policy's."""
    torch.manual_seed(0)
    learner = MAMLTRPO(MLP((2,), [16, 16], activation="tanh"), "reinforcement", 2, eval_inner_steps=1)
    sampler = TaskSampler(Navigation2D(horizon=50), tasks_per_batch=8, trajectories=8, test_tasks=20)
    untrained = evaluate(learner, sampler, "test").others["return_after_1_steps"]["mean"]
    for _ in range(3):
        out = learner.meta_loss(sampler.train_batch())
        learner.outer_update(out, None, None)
        assert out.metrics["kl"] <= 0.01
    result = evaluate(learner, sampler, "test").others
    before, after = result["return_after_0_steps"]["mean"], result["return_after_1_steps"]["mean"]
    assert after > before + 3 and after > untrained + 3, (before, after, untrained)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["dataset=navigation2d"], "needs sampler=tasks, model=policy_mlp and algorithm=maml_trpo"),
        (["dataset=navigation2d", "sampler=tasks", "model=policy_mlp"], "algorithm=maml_trpo"),
        (["dataset=navigation2d", "sampler=tasks", "algorithm=maml_trpo"], "model=policy_mlp"),
        (["sampler=tasks"], "sampler=tasks draws tasks of reinforcement-learning task families"),
        (["algorithm=maml_trpo"], "algorithm=maml_trpo learns policies"),
        (["experiment=maml_trpo_navigation2d", "trainer.optimizer=sgd"], "TRPO step replaces"),
        (["experiment=maml_trpo_navigation2d", "dataset.reward=manhattan"], "dataset.reward"),
        (["experiment=maml_trpo_navigation2d", "algorithm.max_kl=0"], "algorithm.max_kl"),
        (["experiment=maml_trpo_navigation2d", "algorithm.backtrack_ratio=1"], "algorithm.backtrack_ratio"),
        (["experiment=maml_trpo_navigation2d", "sampler.trajectories=0"], "sampler.trajectories"),
        (["experiment=maml_trpo_navigation2d", "model.activation=sigmoid"], "model.activation"),
        (
            ["experiment=maml_trpo_navigation2d", "algorithm=maml_ppo", "algorithm.clip_ratio=1.5"],
            "algorithm.clip_ratio",
        ),
        (["experiment=maml_trpo_navigation2d", "algorithm=maml_ppo", "algorithm.gamma=2"], "algorithm.gamma"),
        (["algorithm=maml_ppo"], "algorithm=maml_ppo learns policies"),
        (["experiment=maml_trpo_bandit", "dataset.arms=1"], "dataset.arms"),
        (["experiment=maml_trpo_navigation2d", "dataset.action_scale=0"], "dataset.action_scale"),
        (["experiment=maml_trpo_navigation2d", "sampler.eval_trajectories=0"], "sampler.eval_trajectories"),
        (["experiment=maml_trpo_navigation2d", "algorithm.eval_later_lr=-0.1"], "algorithm.eval_later_lr"),
        (["dataset=bandit"], "needs sampler=tasks"),
    ],
)
def test_bad_reinforcement_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as caught:
        validate_config(compose_config(overrides)[0])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_ppo_surrogate_clips_the_ratio_as_a_hand_computation():
    learner = MAMLPPO(MLP((2,), [3], activation="tanh"), "reinforcement", 2, clip_ratio=0.2)
    ratio = torch.tensor([0.5, 1.0, 1.5]).view(1, 1, 3)
    collected = SimpleNamespace(
        after_advantages=torch.tensor([1.0, -1.0, 1.0]).view(1, 1, 3),
        after=SimpleNamespace(mask=torch.ones(1, 1, 3)),
    )
    # min(r A, clip(r) A): 0.5 (below the range the unclipped term is smaller), -1, and 1.2 (clipped from 1.5)
    assert learner.surrogate(ratio, collected).item() == pytest.approx(-(0.5 - 1.0 + 1.2) / 3)
    assert MAMLTRPO.surrogate(learner, ratio, collected).item() == pytest.approx(-(0.5 - 1.0 + 1.5) / 3)


def test_ppo_outer_update_steps_the_optimiser_and_stays_near_the_old_policy():
    learner, sampler = tiny()
    ppo = MAMLPPO(MLP((2,), [3], activation="tanh"), "reinforcement", 2, batching="loop", ppo_epochs=3)
    ppo.load_state_dict(learner.state_dict())
    before = [p.detach().clone() for p in ppo.parameters()]
    optimizer = torch.optim.Adam(ppo.parameters(), lr=1e-2)
    out = ppo.meta_loss(sampler.train_batch())
    ppo.outer_update(out, optimizer, None)
    assert all(not torch.equal(a, b) for a, b in zip(before, ppo.parameters()))
    assert 0 < out.metrics["kl"] < 0.5 and optimizer.state_dict()["state"][0]["step"] == 3


def test_a_gym_family_without_its_environment_is_refused():
    with pytest.raises(ConfigError, match="dataset.env is not set"):
        validate_config(compose_config(["dataset=gym", "sampler=tasks", "model=policy_mlp", "algorithm=maml_trpo"])[0])
