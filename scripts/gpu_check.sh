#!/usr/bin/env bash
# The CUDA checks, in one short script for a GPU machine: the CLI on device=cuda and device=auto
# (train, then mode=eval of the checkpoint on the GPU), the default experiment end to end, and the
# vmap-vs-loop task batching benchmark, bf16 / fp16 / torch.compile / channels-last for MAML, and MAML on Omniglot
# step by step toward 20 ms per meta-iteration (scripts/bench_gpu_maml.py). Run from the
# repository root, all groups or those named (each section prints the seconds it took):
#   bash scripts/gpu_check.sh                     # cli batching precision maml
#   bash scripts/gpu_check.sh maml precision      # only these groups
# Needs torch with CUDA plus hydra-core/omegaconf (on PYTHONPATH or installed).
set -uo pipefail
export PYTHONPATH="$PWD${EXTRA_PYTHONPATH:+:$EXTRA_PYTHONPATH}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export METALEARN_CACHE="${METALEARN_CACHE:-$(mktemp -d)}"
work="$(mktemp -d)"
py="${PYTHON:-python3}"
small="dataset.train_classes=200 dataset.val_classes=50 dataset.test_classes=100 sampler.val_episodes=50 trainer.progress=false"

groups="${*:-cli batching precision maml}"
wants() { [[ " $groups " == *" $1 "* ]]; }
SECONDS=0
section() { printf '\n=== %s === (%d s so far)\n' "$1" "$SECONDS"; }
summary() { "$py" -c "import json,sys; r=json.load(open(sys.argv[1])); print({k: r.get(k) for k in ('summary','device','wall_time_s','algorithm')})" "$1/results.json"; }

section "device"
"$py" -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0))"

if wants cli; then
section "protonet, device=cuda, 300 iterations"
"$py" -m metalearn device=cuda $small trainer.iterations=300 hydra.run.dir="$work/cuda" && summary "$work/cuda"

section "mode=eval of that checkpoint on cuda (must equal the line above)"
"$py" -m metalearn mode=eval checkpoint="$work/cuda/checkpoints/best.pt" device=cuda trainer.progress=false hydra.run.dir="$work/eval" && summary "$work/eval"

section "maml, device=auto (must pick cuda), 8 tasks per batch, 100 iterations"
"$py" -m metalearn device=auto algorithm=maml sampler.tasks_per_batch=8 $small trainer.iterations=100 hydra.run.dir="$work/auto" && summary "$work/auto"

section "maml with batching=threads on cuda (allowed, not auto's choice there), 20 iterations"
"$py" -m metalearn device=cuda algorithm=maml algorithm.batching=threads sampler.tasks_per_batch=8 $small trainer.iterations=20 hydra.run.dir="$work/threads" && summary "$work/threads"

section "the default experiment (metalearn with no arguments but device and progress)"
"$py" -m metalearn device=cuda trainer.progress=false hydra.run.dir="$work/default" && summary "$work/default"

section "vmap and loop meta-gradients agree on cuda (MAML, meta-batch 4, fp32 without TF32)"
"$py" - <<'PY'
import torch
from metalearn.algorithms.maml import MAML
torch.backends.cudnn.allow_tf32 = False  # TF32 convolutions alone differ by ~1e-2 here; compare true fp32
torch.backends.cuda.matmul.allow_tf32 = False
from metalearn.models.conv4 import Conv4
from metalearn.episode import EpisodeBatch
dev = torch.device("cuda")
labels = torch.arange(5, device=dev)
g = torch.Generator(device=dev).manual_seed(0)
batch = EpisodeBatch(torch.rand(4, 5, 1, 28, 28, device=dev, generator=g), labels.repeat(4, 1),
                     torch.rand(4, 75, 1, 28, 28, device=dev, generator=g), labels.repeat_interleave(15).repeat(4, 1))
grads = {}
for path in ("loop", "vmap"):
    torch.manual_seed(0)
    learner = MAML(Conv4((1, 28, 28)), "classification", 5, batching=path).to(dev)
    learner.meta_loss(batch).loss.backward()
    grads[path] = torch.cat([p.grad.flatten() for p in learner.parameters() if p.grad is not None])
diff = (grads["loop"] - grads["vmap"]).abs().max().item()
print(f"max |grad_loop - grad_vmap| = {diff:.3e} (largest |grad| {grads['loop'].abs().max().item():.3e})")
PY

fi

if wants batching; then
  section "vmap vs loop task batching"
  "$py" scripts/bench_gpu_batching.py
fi

if wants precision; then

section "device.precision=bf16 and device.compile=true through the CLI (maml, vmap, 20 iterations)"
"$py" -m metalearn device=cuda algorithm=maml device.precision=bf16 device.compile=true sampler.tasks_per_batch=8 $small trainer.iterations=20 hydra.run.dir="$work/bf16" && summary "$work/bf16"

section "precision x compile x memory format: MAML on Omniglot shapes, meta-batch 32 (time, peak memory, numerics)"
"$py" scripts/bench_precision.py --device cuda --compile --numerics
fi

if wants maml; then
  section "MAML on Omniglot 5-way 1-shot, meta-batch 32, step by step (eager, no-sync, bf16, compile, CUDA graph)"
  # OMNIGLOT_ROOT: a folder holding Omniglot's zips (glyphs stand in without it); TRAIN_ITERATIONS: then train so long
  "$py" scripts/bench_gpu_maml.py ${OMNIGLOT_ROOT:+--omniglot-root "$OMNIGLOT_ROOT"} \
    --train-iterations "${TRAIN_ITERATIONS:-0}"
fi
section "done"
