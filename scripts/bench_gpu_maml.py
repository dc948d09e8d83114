"""MAML on Omniglot 5-way 1-shot at meta-batch 32 on one GPU, step by step: milliseconds per meta-iteration for each
way of running it, how far bf16 takes the meta-gradient from fp32's, and the test accuracy of a training run.

The setup is `metalearn experiment=maml_omniglot_5w1s` (Finn et al.: Conv4-64 on 28x28, one inner step at 0.4,
meta-batch 32, Adam 1e-3), composed and built as the command builds it, on `--device`; the data is on the device
and every timed iteration draws its meta-batch there (data included). Steps (`--steps`, in this order by default):

  eager        batching=vmap (auto's choice on CUDA), fp32 (torch's defaults: TF32 convolutions), as a run trains
  no-sync      the same without the two host synchronisations of the per-iteration training metrics
  bf16         device.precision=bf16 (autocast)
  compile      device.compile=true (the vmapped per-task function through torch.compile)
  graph        the whole meta-iteration (inner loop, meta-gradient, Adam with capturable state) captured once as a
               CUDA graph and replayed; each iteration copies its freshly drawn meta-batch into the graph's inputs
  graph-bf16   the same under bf16 autocast

Time: the iterations after --warmup ones, from one device synchronisation to the next, divided by their count (the
host runs ahead as a training run lets it). Numerics: ||g_bf16 - g_fp32|| / ||g_fp32|| of the meta-gradient on the
same meta-batch, both eager, against the 1e-2 the issue allows (and the first-order gradient's distance beside it).
--train-iterations N then trains `metalearn` itself for N iterations on the device (the experiment's validation
and 600 test episodes, 3 inner steps at test) and reports its wall time and test accuracy.

  python scripts/bench_gpu_maml.py --omniglot-root PATH                      # on a GPU: scripts/gpu_check.sh
  python scripts/bench_gpu_maml.py --omniglot-root PATH --train-iterations 15000
  python scripts/bench_gpu_maml.py --device cpu --tasks 2 --iterations 2 --steps eager,no-sync,bf16   # a CPU trial
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metalearn.cli import compose_config  # noqa: E402
from metalearn.config.validate import validate_config  # noqa: E402
from metalearn.execution.precision import autocast  # noqa: E402
from metalearn.run import _build  # noqa: E402

STEPS = ("eager", "no-sync", "bf16", "compile", "graph", "graph-bf16")
FIELDS = ("support_x", "support_y", "query_x", "query_y")


def overrides(args: argparse.Namespace, step: str = "eager") -> list[str]:
    data = [f"dataset.root={args.omniglot_root}"] if args.omniglot_root else ["dataset=glyphs"]
    extra = ["device.precision=bf16"] if step.endswith("bf16") else []
    extra += ["device.compile=true"] if step == "compile" else []
    return [
        "experiment=maml_omniglot_5w1s",
        *data,
        f"device={args.device}",
        f"sampler.tasks_per_batch={args.tasks}",
        "algorithm.batching=vmap",
        *extra,
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(args: argparse.Namespace, step: str):
    cfg = compose_config(overrides(args, step))[0]
    validate_config(cfg)
    parts = _build(cfg)
    parts.learner.train()
    return parts, cfg.device.precision


def eager_step(parts, precision: str, metrics: bool) -> Callable[[], None]:
    """One meta-iteration as the trainer runs it (its finiteness checks apart)."""
    learner, sampler = parts.learner, parts.sampler
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    if not metrics:  # the training metrics are floats: each one waits for the device
        learner.step_metrics = lambda *args: {}

    def step() -> None:
        batch = sampler.train_batch()
        with autocast(parts.device, precision):
            out = learner.meta_loss(batch)
        learner.outer_update(out, optimizer, None)

    return step


def graph_step(parts, precision: str) -> Callable[[], None]:
    """The whole meta-iteration as one CUDA graph, replayed on each new meta-batch copied into its inputs."""
    learner, sampler, device = parts.learner, parts.sampler, parts.device
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3, capturable=True)
    learner.step_metrics = lambda *args: {}  # no host synchronisation may happen while capturing
    static = sampler.train_batch()

    # autocast's cache of cast weights must not outlive a capture (torch's CUDA graph notes): no cache
    cast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False)

    def body() -> None:
        with cast:
            out = learner.meta_loss(static)
        out.loss.backward()
        optimizer.step()

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):  # warm-up outside the graph, on a side stream, as torch's CUDA graph notes ask
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            body()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)  # the gradients are then allocated from the graph's own pool
    with torch.cuda.graph(graph):
        body()

    def step() -> None:
        batch = sampler.train_batch()
        for name in FIELDS:
            getattr(static, name).copy_(getattr(batch, name))
        graph.replay()

    return step


def time_step(step: Callable[[], None], device: torch.device, warmup: int, iterations: int) -> tuple[float, float]:
    """(seconds of the first call, seconds per iteration after the warm-up)."""
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    first = time.perf_counter() - start
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    sync(device)
    return first, (time.perf_counter() - start) / iterations


def meta_gradient(parts, precision: str, batch, first_order: bool = False) -> torch.Tensor:
    learner = parts.learner
    learner.zero_grad(set_to_none=True)
    learner.first_order = first_order
    with autocast(parts.device, precision):
        out = learner.meta_loss(batch)
    grads = out.grads if out.grads is not None else torch.autograd.grad(out.loss, list(learner.parameters()))
    learner.first_order = False
    return torch.cat([g.flatten().float() for g in grads])


def numerics(args: argparse.Namespace) -> None:
    parts, _ = build(args, "eager")
    batch = parts.sampler.train_batch()
    exact = meta_gradient(parts, "fp32", batch)
    distance = lambda g: float((g - exact).norm() / exact.norm())
    bf16 = distance(meta_gradient(parts, "bf16", batch))
    first = distance(meta_gradient(parts, "fp32", batch, first_order=True))
    verdict = "within" if bf16 <= 1e-2 else "outside"
    print(
        f"\nmeta-gradient, ||g - g_fp32|| / ||g_fp32|| on one meta-batch: bf16 {bf16:.3g} ({verdict} 1e-2); "
        f"the first-order gradient {first:.3g}"
    )


def train(args: argparse.Namespace) -> None:
    """`metalearn` itself for --train-iterations iterations on the device: wall time and test accuracy."""
    run_dir = Path(tempfile.mkdtemp()) / "run"
    command = [
        sys.executable,
        "-m",
        "metalearn",
        *overrides(args),
        f"trainer.iterations={args.train_iterations}",
        f"trainer.val_interval={max(1, args.train_iterations // 5)}",
        f"trainer.checkpoint_interval={max(1, args.train_iterations // 5)}",
        "trainer.progress=false",
        f"hydra.run.dir={run_dir}",
    ]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        print(f"the training run failed (exit status {done.returncode})")
        return
    results = json.loads((run_dir / "results.json").read_text())
    print(
        f"trained {args.train_iterations} iterations and tested in {wall:.0f} s: test {results['metric']} "
        f"{100 * results['mean']:.2f}% +- {100 * results['ci95']:.2f} over {results['episodes']} episodes "
        f"(best checkpoint: iteration {results.get('best_iteration')})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--omniglot-root", help="the folder holding Omniglot (dataset.root); glyphs without it")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    parser.add_argument("--train-iterations", type=int, default=0, help="then train metalearn this long (0: no)")
    args = parser.parse_args()
    steps = args.steps.split(",")
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}: choose from {', '.join(STEPS)}")
    device = torch.device(args.device)
    if device.type != "cuda" and any(s.startswith(("graph", "compile")) for s in steps):
        parser.error("the compile and graph steps are measured on a CUDA GPU")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    data = "Omniglot" if args.omniglot_root else "glyphs (no --omniglot-root)"
    print(f"torch {torch.__version__}, {name}; MAML {data} 5-way 1-shot, meta-batch {args.tasks}, data on the device")
    print("| step | first call | ms per meta-iteration | meta-iterations per second |\n|---|---:|---:|---:|")
    for step in steps:
        torch._dynamo.reset()
        parts, precision = build(args, step)
        try:
            if step.startswith("graph"):
                run = graph_step(parts, precision)
            else:
                run = eager_step(parts, precision, metrics=step != "no-sync")
            first, per = time_step(run, device, args.warmup, args.iterations)
        except Exception as exc:  # one step that cannot run here must not cost the others (the device time is short)
            print(f"| {step} | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]} | | |", flush=True)
            continue
        print(f"| {step} | {first:.2f} s | {1e3 * per:.1f} | {1 / per:.1f} |", flush=True)
    numerics(args)
    if args.train_iterations:
        train(args)


if __name__ == "__main__":
    main()
