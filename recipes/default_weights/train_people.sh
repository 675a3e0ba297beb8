#!/usr/bin/env bash
# Train (or continue) the default StarPose-t weights on the people mix (people_mix.json).
#
#   bash recipes/default_weights/train_people.sh [extra train options...]   # e.g. --resume
#
# Starts from the packaged weights (their lineage continues), keeps an EMA of the weights and
# writes RUN_DIR/best.safetensors whenever the EMA improves on the held-out, human-labelled
# validation people; package.py turns that into the packaged file. On a CUDA machine the same
# command runs with AMP; pass a larger --batch-size there.
# Environment: PYTHON (interpreter), RUN_DIR (default runs/people_t), EPOCHS (default 20, what the shipped weights had),
# INIT (weights to start from; default the packaged file), MIX (default people_mix.json; people_mix_human.json
# when the teacher labels in data/people_labels are not at hand), THREADS (default: all cores, at most 2 on CPU).
# A continuation draws the same people with the same augmentation as the run before unless it gets
# its own --seed (the draws depend only on seed and epoch): pass --seed N, a new N each time.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
RUN_DIR="${RUN_DIR:-runs/people_t}"
EPOCHS="${EPOCHS:-20}"
INIT="${INIT:-starpose/assets/weights/starpose_t.safetensors}"
MIX="${MIX:-recipes/default_weights/people_mix.json}"
# tcmalloc keeps the large activation buffers between steps (benchmarks.train_speed: faster than
# glibc's mmap-per-allocation); used when the Debian package libtcmalloc-minimal4 is installed.
for lib in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4; do
  if [ -f "$lib" ] && [ -z "${LD_PRELOAD:-}" ]; then export LD_PRELOAD="$lib"; fi
done
THREADS="${THREADS:-$(nproc)}"
# Idle OpenMP threads sleep soon instead of spinning: on a shared machine a spinning worker
# thread steals the core its partner needs (measured: no epoch in an hour under load).
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-10000}"
FIXTURE="../shared/fixtures/coco"
VAL=()
if [ -f "$FIXTURE/test_coco.json" ]; then VAL=(--val-ann-file "$FIXTURE/test_coco.json" --val-img-dir "$FIXTURE"); fi
exec "$PY" -m starpose.cli train --mix "$MIX" --variant starpose_t \
  --init-weights "$INIT" --epochs "$EPOCHS" --batch-size 32 --lr 1e-3 --no-scale-lr --lr-schedule cosine \
  --warmup-iters 300 --weight-decay 0.05 --photometric --ema 0.9995 --workers 1 --threads "$THREADS" \
  --val-interval 1 --seed 0 --work-dir "$RUN_DIR" "${VAL[@]}" "$@"
