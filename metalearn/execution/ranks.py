"""Data parallelism over processes (torch.distributed): the tasks of a meta-batch and the fixed evaluation episodes
are split across ranks, and whatever is a mean over the meta-batch's tasks (gradients, Reptile's adapted weights,
TRPO's gradient and curvature products, the logged metrics, BatchNorm's running statistics) is combined across them.

Every rank samples the whole meta-batch from the same seeded stream and keeps its contiguous part (`shard`), so the
tasks of meta-iteration i are the same for any number of ranks, and so is the sampler's state that checkpoints keep:
a run stopped at 4 processes resumes at 2 or 1. A rank's part holds n_r of the batch's N tasks; a mean over its
tasks enters the global mean with the weight n_r / N (`task_mean`), which makes it the mean over all N tasks, as one
process computes it (up to the order of the additions).

Launchers: torchrun (and any launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT), SLURM's srun and
submitit's tasks, whose own variables are read where RANK is absent (metalearn.launch). With one process every
function here is the identity and nothing is initialised.
"""

from __future__ import annotations

import datetime
import os
import re
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from metalearn.errors import ConfigError, MetalearnError
from metalearn.launch import Launch, launch_from_env, rendezvous


# --- the process group --------------------------------------------------------------------------------------------
def join(timeout_s: float) -> bool:
    """Join the other processes of this launch (once; later calls return at once). Collectives on CPU tensors use
    gloo and, where CUDA is present, those on GPU tensors NCCL. A collective that waits longer than `timeout_s`
    (a process stuck or gone) raises instead of hanging. Returns whether there is more than one process."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    launch = launch_from_env()
    if launch.world_size == 1:
        return False
    if not dist.is_available():
        raise ConfigError(f"{launch.launcher} started {launch.world_size} processes, but this torch has no distributed")
    if launch.launcher != "torchrun":  # torchrun sets where to meet; SLURM's and submitit's tasks derive it
        addr, port = rendezvous(launch)
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = addr, str(port)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(_gpu_of(launch))
    dist.init_process_group(
        "cpu:gloo,cuda:nccl" if cuda else "gloo",
        init_method="env://",
        rank=launch.rank,
        world_size=launch.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    return True


def leave() -> None:
    """End this process's part in the process group (if it joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def is_primary() -> bool:
    """Whether this process writes the run's files and speaks (rank 0, or the only process)."""
    return rank() == 0


def _gpu_of(launch: Launch) -> int:
    """The CUDA device a process of `launch` takes: its rank on its machine, modulo the devices it sees (a launcher
    that gives each task one GPU leaves each of them device 0)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return launch.local_rank % count if count else launch.local_rank


def local_rank() -> int:
    """The CUDA device this process takes (0 for a lone process)."""
    return _gpu_of(launch_from_env()) if _active() else 0


# --- splitting and combining --------------------------------------------------------------------------------------
class _Share:
    """This rank's part of the current meta-batch: n_r / N."""

    value: float = 1.0


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """This rank's contiguous part [start, stop) of n items: equal parts, the first n % world ranks one more."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard(batch: Any, empty_ok: bool = False) -> Any:
    """This rank's part of a batch of tasks (anything with len() and part(start, stop)); task_mean then weighs a
    mean over these tasks by their share of the batch. A training batch must give every rank a task; an evaluation
    chunk (empty_ok) may leave some ranks none."""
    n, world = len(batch), world_size()
    if world == 1:
        _Share.value = 1.0
        return batch
    if n < world and not empty_ok:  # every rank finds it: rank 0 says it
        if rank() > 0:
            raise PeerFailed("the meta-batch is smaller than the number of processes")
        raise agreed(
            ConfigError(
                f"a meta-batch of {n} tasks cannot be split over {world} processes, each of which needs one; raise "
                "sampler.tasks_per_batch (sampler.batch_size for pre-training) or start fewer processes"
            )
        )
    start, stop = shard_bounds(n, rank(), world)
    _Share.value = (stop - start) / n
    return batch.part(start, stop)


def _all_reduce(flat: Tensor, op: Any = None) -> Tensor:
    dist.all_reduce(flat, op=dist.ReduceOp.SUM if op is None else op)
    return flat


def task_mean(tensors: Sequence[Tensor]) -> list[Tensor]:
    """The meta-batch means of quantities each rank gives as the mean over its own tasks (all of one dtype):
    sum over ranks of share_r * value_r, in one all-reduce. The identity for one process."""
    tensors = list(tensors)
    if not _active() or not tensors:
        return tensors
    flat = torch.cat([t.detach().reshape(-1) for t in tensors]) * _Share.value
    _all_reduce(flat)
    return [part.view_as(t) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


def reduce_gradients(parameters: Sequence[nn.Parameter]) -> None:
    """Replace each parameter's .grad (the gradient of the mean loss over this rank's tasks) by the gradient of the
    mean over the meta-batch. A parameter no rank gave a gradient keeps none."""
    if not _active():
        return
    trained = [p for p in parameters if p.requires_grad]
    if not trained:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in trained]
    used = torch.tensor([p.grad is not None for p in trained], dtype=grads[0].dtype, device=grads[0].device)
    *means, seen = task_mean([*grads, used])
    for p, g, any_used in zip(trained, means, (seen > 0).tolist()):
        p.grad = g if any_used else None


def largest(value: int) -> int:
    """The largest of the ranks' `value` (every rank gets the same answer): e.g. whether any rank received a signal."""
    if not _active():
        return value
    return int(_all_reduce(torch.tensor([value]), dist.ReduceOp.MAX).item())


def all_ranks(value: Any) -> list[Any]:
    """Every rank's `value` (any picklable object), in rank order."""
    if not _active():
        return [value]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def gather_in_order(chunks: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-episode scores of the whole evaluation in episode order, from each rank's scores of its part of every
    chunk (chunks[c][name]: the scores of this rank's part of chunk c)."""
    merged: dict[str, list[float]] = {}
    for parts in zip(*all_ranks(chunks)):  # chunk by chunk; within a chunk, rank r holds the r-th contiguous part
        for part in parts:
            for name, scores in part.items():
                merged.setdefault(name, []).extend(scores)
    return merged


def broadcast_object(value: Any) -> Any:
    """Rank 0's `value` on every rank."""
    if not _active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_state(module: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (they start equal by seeding; this makes sure)."""
    if not _active():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


# --- BatchNorm's running statistics -------------------------------------------------------------------------------
_Snapshot = list[tuple[nn.modules.batchnorm._BatchNorm, Tensor, Tensor, int]]


def batch_norm_snapshot(module: nn.Module) -> _Snapshot:
    """The running statistics of module's BatchNorm layers before a meta-iteration, for sync_batch_norm."""
    if not _active():
        return []
    return [
        (m, m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked))
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    ]


def sync_batch_norm(snapshot: _Snapshot) -> None:
    """Running statistics as one process would have them after updating them with every task's batches in order.

    Each rank updated its layers u_r times from the common start s0; an exponential average with momentum m then
    holds d^u_r s0 + c_r (d = 1 - m), its tasks' contribution c_r. In task order the ranks' contributions chain:
    s = d^U s0 + sum_r d^(U_r) c_r, U the updates of all ranks and U_r those of the ranks after r. Without momentum
    (a cumulative average over n batches) the sums of the batches' statistics add instead.
    """
    if not snapshot:
        return
    counts = torch.tensor([int(m.num_batches_tracked) - n0 for m, _, _, n0 in snapshot])
    every = torch.stack([torch.as_tensor(c) for c in all_ranks(counts)])  # [world, layers]
    total, later = every.sum(0).tolist(), every[rank() + 1 :].sum(0).tolist()
    parts, starts = [], []
    for (m, mean0, var0, n0), u, u_total, u_later in zip(snapshot, counts.tolist(), total, later):
        if m.momentum is None and n0 + u_total == 0:  # a cumulative average of nothing yet: unchanged
            parts += [m.running_mean * 0, m.running_var * 0]
            starts += [mean0 / world_size(), var0 / world_size()]
            continue
        if m.momentum is None:  # cumulative: s = (n0 s0 + sum of the batches' statistics) / (n0 + U)
            parts += [
                ((n0 + u) * m.running_mean - n0 * mean0) / (n0 + u_total),
                ((n0 + u) * m.running_var - n0 * var0) / (n0 + u_total),
            ]
            starts += [n0 * mean0 / (n0 + u_total) / world_size(), n0 * var0 / (n0 + u_total) / world_size()]
            continue
        d = 1.0 - m.momentum
        parts += [d**u_later * (m.running_mean - d**u * mean0), d**u_later * (m.running_var - d**u * var0)]
        starts += [d**u_total * mean0 / world_size(), d**u_total * var0 / world_size()]
    flat = torch.cat([(p + s).reshape(-1) for p, s in zip(parts, starts)])
    _all_reduce(flat)
    pieces = iter(flat.split([p.numel() for p in parts]))
    for (m, _, _, n0), u_total in zip(snapshot, total):
        m.running_mean.copy_(next(pieces).view_as(m.running_mean))
        m.running_var.copy_(next(pieces).view_as(m.running_var))
        m.num_batches_tracked.fill_(n0 + u_total)


# --- failures -----------------------------------------------------------------------------------------------------
class PeerFailed(MetalearnError):
    """Another rank failed and says why; this rank stops without a word of its own."""

    quiet = True
    agreed = True


def agreed(exc: BaseException) -> BaseException:
    """Mark an error that every rank knows of (each raised it, or PeerFailed for it): the ranks then end together,
    after the reporting one has said it (`end_together`), so that no launcher stops it before it could."""
    exc.agreed = True  # type: ignore[attr-defined]
    return exc


def end_together(exc: BaseException) -> None:
    """Before a process exits on an error every rank knows of: wait until all have reached this point (the one
    that reports has printed its line by then). Never raises; a collective that fails ends the wait."""
    if not getattr(exc, "agreed", False) or not _active():
        return
    try:
        dist.barrier()
    except Exception:  # noqa: BLE001 - a peer already gone: nothing left to wait for
        pass


@contextmanager
def together(what: str) -> Iterator[None]:
    """A stretch every rank runs alike (building the run): if any rank fails in it, all stop, and only the lowest
    failing rank reports, so that an error of the config or the data is said once rather than once per process."""
    if not _active():
        yield
        return
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:  # noqa: BLE001 - re-raised below (a signal on one rank too), on the reporting rank
        failure = exc
    states = all_ranks((failure is not None, isinstance(failure, KeyboardInterrupt)))
    failed = [r for r, (has_failed, _) in enumerate(states) if has_failed]
    if not failed:
        return
    first = failed[0]
    if failure is not None and rank() == first:
        raise agreed(failure)
    if states[first][1] and rank() == 0:  # a signal reached that rank alone: it says nothing of it (rank 0 speaks)
        raise agreed(MetalearnError(f"rank {first} was stopped by a signal while {what}"))
    raise PeerFailed(f"rank {first} failed while {what}")


def collective_failure(exc: BaseException, timeout_s: float | None = None) -> str | None:
    """What to say for an error raised by a collective: None when a peer went away (it reports its own error, or the
    launcher reports how it died), the line for a timeout, or a line with the collective's own error (a backend's
    failure on this rank). "" for an error that is not a collective's."""
    text = str(exc)
    distributed = isinstance(exc, getattr(dist, "DistError", ())) or (
        isinstance(exc, RuntimeError) and re.search(r"gloo|nccl|connection|peer", text, re.IGNORECASE) is not None
    )
    if not distributed or world_size() == 1:
        return ""
    where = f"rank {rank()} of {world_size()}"
    if re.search(r"time(d)? ?out", text, re.IGNORECASE):
        limit = f" (device.timeout_s={timeout_s:g})" if timeout_s is not None else ""
        return f"{where}: the other processes did not answer in time{limit}; one is stuck or has died without a word"
    if re.search(r"closed by peer|connection reset|broken pipe|remote (worker|process)", text, re.IGNORECASE):
        return None
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    return f"{where}: a collective operation failed: {first}"


def barrier() -> None:
    """Wait until every rank is here (e.g. until rank 0's files are written)."""
    if _active():
        dist.barrier()
