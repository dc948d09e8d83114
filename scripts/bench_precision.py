"""device.precision and device.compile for second-order MAML on Omniglot's shapes: time per meta-iteration, peak
memory, and how far each setting's meta-gradient is from the float64 one.

Shapes: Conv4 with 64 channels on 28x28x1, 5-way 1-shot, 15 queries per class, --tasks tasks per meta-batch (32 in
the MAML paper), inner lr 0.4, batching=vmap on CUDA (auto's choice there) and --batching on the CPU. Random images:
the arithmetic, not the data, is measured. Settings: fp32, bf16 and (CUDA only) fp16 eager, on CUDA in both memory
formats, and with --compile fp32 and bf16 through torch.compile (its first call, the compilation, reported apart).
Time: the median of --iterations meta-iterations (forward, inner loop, meta-gradient) after two warm-up ones.
Peak memory: CUDA's max_memory_allocated during the timed iterations; on the CPU, not reported (the process's
peak resident size does not fall between settings).

Numerics (--numerics): the relative distance ||g - g64|| / ||g64|| of each setting's meta-gradient from the float64
one on the same meta-batch, for 1 and 5 inner steps, beside the distance of the first-order gradient (what
dropping the second-order term costs): a precision whose error approaches that distance has lost the second-order
information.

    python scripts/bench_precision.py --device cpu --tasks 8 --numerics
    python scripts/bench_precision.py --device cuda --compile --numerics     # scripts/gpu_check.sh
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metalearn.algorithms.maml import MAML  # noqa: E402
from metalearn.episode import EpisodeBatch  # noqa: E402
from metalearn.execution.precision import DTYPES  # noqa: E402
from metalearn.models.conv4 import Conv4  # noqa: E402


def batch(tasks: int, device: torch.device, dtype: torch.dtype = torch.float32) -> EpisodeBatch:
    g = torch.Generator().manual_seed(0)
    n, k, q = 5, 1, 15
    images = lambda per: torch.rand(tasks, n * per, 1, 28, 28, generator=g).to(device, dtype)
    labels = lambda per: torch.arange(n).repeat_interleave(per).expand(tasks, -1).contiguous().to(device)
    return EpisodeBatch(images(k), labels(k), images(q), labels(q), n_way=n)


def learner(
    device: torch.device,
    batching: str,
    inner_steps: int = 1,
    dtype: torch.dtype = torch.float32,
    memory_format: str = "auto",
) -> MAML:
    torch.manual_seed(0)
    conv4 = Conv4((1, 28, 28), memory_format=memory_format)
    net = MAML(conv4, "classification", 5, inner_lr=0.4, inner_steps=inner_steps, batching=batching)
    return net.to(device, dtype)


def meta_gradient(model: MAML, data: EpisodeBatch, precision: str, first_order: bool = False) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    model.first_order = first_order
    device_type = data.support_x.device.type
    with torch.autocast(device_type, dtype=DTYPES.get(precision, torch.bfloat16), enabled=precision in DTYPES):
        out = model.meta_loss(data)
    if out.grads is not None:
        return torch.cat([g.flatten().double() for g in out.grads])
    out.loss.backward()
    return torch.cat([p.grad.flatten().double() for p in model.parameters()])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timing(args: argparse.Namespace, device: torch.device, batching: str) -> None:
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    print(f"\nmeta-iteration, MAML second order, meta-batch {args.tasks}, {device}, batching={batching}")
    # model.memory_format: auto is contiguous on CUDA; channels_last is measured beside it there
    formats = ["auto", "channels_last"] if device.type == "cuda" else ["auto"]
    print("| precision | compile | memory format | first call | per meta-iteration | peak memory |")
    print("|---|---|---|---|---|---|")
    settings = [(False, p, f) for p in precisions for f in formats]
    # compiled: fp32 and bf16 in the default layout (each compilation takes a minute or more)
    settings += [(True, p, "auto") for p in ("fp32", "bf16")] if args.compile else []
    for compile_, precision, memory_format in settings:
        torch._dynamo.reset()
        model, data = learner(device, batching, memory_format=memory_format), batch(args.tasks, device)
        model.compile_backend = "inductor" if compile_ else None  # what device.compile=true sets
        sync(device)
        start = time.perf_counter()
        meta_gradient(model, data, precision)
        sync(device)
        first = time.perf_counter() - start
        meta_gradient(model, data, precision)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.iterations):
            sync(device)
            start = time.perf_counter()
            meta_gradient(model, data, precision)
            sync(device)
            times.append(time.perf_counter() - start)
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB" if device.type == "cuda" else "-"
        median = statistics.median(times)
        row = (
            f"| {precision} | {'yes' if compile_ else 'no'} | {memory_format} | {first:.2f} s | {1e3 * median:.1f} ms |"
        )
        print(f"{row} {peak} |")


def numerics(args: argparse.Namespace, device: torch.device, batching: str) -> None:
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else ["fp16 (CPU-emulated)"])
    print(f"\nmeta-gradient distance from float64, ||g - g64|| / ||g64||, meta-batch {args.tasks}, {device}")
    print("| inner steps | first-order gradient (fp32) | " + " | ".join(precisions) + " |")
    print("|---|---|" + "---|" * len(precisions))
    for steps in (1, 5):
        exact = meta_gradient(
            learner(device, batching, steps, torch.float64), batch(args.tasks, device, torch.float64), "fp32"
        )
        model, data = learner(device, batching, steps), batch(args.tasks, device)
        distance = lambda g, exact=exact: float((g - exact).norm() / exact.norm())
        cells = [f"{distance(meta_gradient(model, data, 'fp32', first_order=True)):.3g}"]
        for precision in precisions:
            cells.append(f"{distance(meta_gradient(model, data, precision.split()[0])):.3g}")
        print(f"| {steps} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--batching", default="loop", help="the CPU's path (CUDA always uses vmap)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor)")
    parser.add_argument("--numerics", action="store_true", help="also compare the meta-gradients with float64's")
    args = parser.parse_args()
    device = torch.device(args.device)
    batching = "vmap" if device.type == "cuda" else args.batching
    if args.compile and batching != "vmap":
        parser.error("--compile measures the compiled vmapped per-task function: add --batching vmap on the CPU")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'CPU'}")
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here
    timing(args, device, batching)
    if args.numerics:
        numerics(args, device, batching)


if __name__ == "__main__":
    main()
