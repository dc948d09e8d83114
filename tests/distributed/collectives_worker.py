"""Run by test_collectives.py under `torchrun --nproc_per_node=2`: each check compares what the ranks assemble
with what one process computes over the whole meta-batch. Exits non-zero (an AssertionError) on a mismatch."""

from __future__ import annotations

import torch
from torch import nn

from metalearn.errors import MetalearnError
from metalearn.execution import ranks


class Tasks(list):
    """A batch of tasks as ranks.shard takes it: len() and part(start, stop)."""

    def part(self, start: int, stop: int) -> "Tasks":
        return Tasks(self[start:stop])


def batch_norm_statistics_equal_one_process_in_task_order() -> None:
    torch.manual_seed(0)
    batches = [torch.randn(7, 3, 4, 4) * (i + 1) + i for i in range(5)]  # 5 tasks: rank 0 has 3, rank 1 has 2
    for momentum in (0.1, None):  # an exponential average, and a cumulative one
        alone = nn.BatchNorm2d(3, momentum=momentum)
        for x in batches:
            alone(x)
        shared = nn.BatchNorm2d(3, momentum=momentum)
        before = ranks.batch_norm_snapshot(shared)
        start, stop = ranks.shard_bounds(len(batches), ranks.rank(), ranks.world_size())
        for x in batches[start:stop]:
            shared(x)
        ranks.sync_batch_norm(before)
        torch.testing.assert_close(shared.running_mean, alone.running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(shared.running_var, alone.running_var, rtol=1e-5, atol=1e-6)
        assert int(shared.num_batches_tracked) == 5


def gradients_are_those_of_the_meta_batch_mean() -> None:
    torch.manual_seed(1)
    x, net = torch.randn(5, 4), nn.Linear(4, 2)
    unused = nn.Parameter(torch.zeros(3))  # no rank gives it a gradient: it keeps none
    only_rank_1 = nn.Parameter(torch.ones(2))  # one rank gives it a gradient: the others count as zero
    per_task = lambda rows: (net(rows).pow(2).sum(-1) + (only_rank_1.sum() if ranks.rank() == 1 else 0)).mean()
    ranks.shard(Tasks(range(5)))  # sets this rank's share: 3/5 or 2/5
    reference = nn.Linear(4, 2)
    reference.load_state_dict(net.state_dict())
    reference(x).pow(2).sum(-1).mean().backward()
    start, stop = ranks.shard_bounds(5, ranks.rank(), 2)
    per_task(x[start:stop]).backward()
    ranks.reduce_gradients([*net.parameters(), unused, only_rank_1])
    torch.testing.assert_close(net.weight.grad, reference.weight.grad)
    torch.testing.assert_close(net.bias.grad, reference.bias.grad)
    assert unused.grad is None
    torch.testing.assert_close(only_rank_1.grad, torch.full((2,), 2 / 5))  # rank 1's 2 of 5 tasks


def scores_come_back_in_episode_order() -> None:
    chunks = []
    for chunk in (Tasks(range(0, 5)), Tasks(range(5, 6))):  # the last chunk leaves rank 1 nothing
        part = ranks.shard(chunk, empty_ok=True)
        chunks.append({"accuracy": [float(e) for e in part]} if len(part) else {})
    assert ranks.gather_in_order(chunks) == {"accuracy": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]}


def a_cumulative_average_of_nothing_stays_as_it_was() -> None:
    layer = nn.BatchNorm2d(3, momentum=None)
    ranks.sync_batch_norm(ranks.batch_norm_snapshot(layer))  # no rank updated it
    assert torch.equal(layer.running_mean, torch.zeros(3)) and torch.equal(layer.running_var, torch.ones(3))


def collective_errors_are_told_apart() -> None:
    gone = RuntimeError("[gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:39310.")
    assert ranks.collective_failure(gone, 5.0) is None  # the peer that went says why
    late = RuntimeError("[gloo] Timed out waiting 5000ms for recv operation to complete")
    assert "did not answer in time (device.timeout_s=5)" in ranks.collective_failure(late, 5.0)
    own = RuntimeError("NCCL error in: ProcessGroupNCCL.cpp, unhandled cuda error")
    assert ranks.collective_failure(own) == f"rank {ranks.rank()} of 2: a collective operation failed: {own}"
    assert ranks.collective_failure(ValueError("not a collective's")) == ""


def agreement_and_failures() -> None:
    assert ranks.largest(ranks.rank() * 7) == 7
    assert ranks.all_ranks(ranks.rank()) == [0, 1]
    assert ranks.broadcast_object(f"rank {ranks.rank()}") == "rank 0"
    try:
        with ranks.together("building"):
            if ranks.rank() == 1:
                raise ValueError("only rank 1 fails")
    except ValueError:
        assert ranks.rank() == 1  # the failing rank reports its own error
    except ranks.PeerFailed as exc:
        assert ranks.rank() == 0 and "rank 1 failed while building" in str(exc)
    else:
        raise AssertionError("together() let a failure pass")
    try:  # a signal that reaches rank 1 alone: rank 0 says so (rank 1, not rank 0, stays silent about signals)
        with ranks.together("building"):
            if ranks.rank() == 1:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        assert ranks.rank() == 1
    except MetalearnError as exc:
        assert ranks.rank() == 0 and str(exc) == "rank 1 was stopped by a signal while building"
        assert not getattr(exc, "quiet", False)


if __name__ == "__main__":
    assert ranks.join(60.0) and ranks.world_size() == 2
    for check in (
        batch_norm_statistics_equal_one_process_in_task_order,
        gradients_are_those_of_the_meta_batch_mean,
        scores_come_back_in_episode_order,
        a_cumulative_average_of_nothing_stays_as_it_was,
        collective_errors_are_told_apart,
        agreement_and_failures,
    ):
        check()
    print(f"rank {ranks.rank()}: all checks passed", flush=True)
    ranks.leave()
