#!/usr/bin/env bash
# Record a fixed set of short runs into OUT_DIR (one sub-folder each), to compare two versions of the code
# bit for bit: run it before and after a change, then `python scripts/compare_runs.py BEFORE AFTER`.
# Usage: bash scripts/record_runs.sh OUT_DIR [--quick]   (--quick skips the 1,500-iteration default run)
set -euo pipefail
out=${1:?usage: record_runs.sh OUT_DIR [--quick]}
quick=${2:-}
mkdir -p "$out"
common=(device=cpu trainer.progress=false)
short=(trainer.iterations=30 trainer.val_interval=10 trainer.log_interval=5 trainer.checkpoint_interval=15
       sampler.tasks_per_batch=4 sampler.val_episodes=20 sampler.test_episodes=40)
run() {
  local name=$1; shift
  echo "== $name: metalearn $*" >&2
  metalearn "${common[@]}" "$@" "hydra.run.dir=$out/$name" >"$out/$name.log" 2>&1
}
[ "$quick" = --quick ] || run default
run maml algorithm=maml "${short[@]}"
run fomaml algorithm=fomaml "${short[@]}"
run reptile algorithm=reptile "${short[@]}"
run mamlpp algorithm=maml++ "${short[@]}" sampler.tasks_per_batch=2
run anil algorithm=anil "${short[@]}"
run metasgd algorithm=metasgd "${short[@]}"
run maml_loop algorithm=maml algorithm.batching=loop "${short[@]}"
run maml_running algorithm=maml algorithm.batch_norm=running "${short[@]}"
run maml_vmap algorithm=maml algorithm.batching=vmap trainer.iterations=3 trainer.val_interval=3 \
  sampler.tasks_per_batch=2 sampler.val_episodes=4 sampler.test_episodes=4 sampler.eval_batch_size=4
run sinusoid dataset=sinusoid model=mlp algorithm=maml algorithm.inner_lr=0.01 sampler.k_shot=10 sampler.q_query=10 \
  sampler.tasks_per_batch=5 trainer.iterations=200 trainer.val_interval=100 trainer.log_interval=20
run reptile_sinusoid dataset=sinusoid model=mlp algorithm=reptile sampler.k_shot=10 sampler.q_query=10 \
  trainer.iterations=60 trainer.val_interval=30 trainer.log_interval=10 sampler.test_episodes=100
run eval_maml mode=eval "checkpoint=$out/maml/checkpoints/best.pt" algorithm.eval_inner_steps=5
