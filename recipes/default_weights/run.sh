#!/usr/bin/env bash
# Rebuild the default weights from scratch: teacher files, images, pseudo-labels, student, package.
# Usage: bash recipes/default_weights/run.sh   (PYTHON=/path/to/python to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
"$PY" recipes/default_weights/gather.py fetch-teacher
"$PY" recipes/default_weights/gather.py images
"$PY" recipes/default_weights/label.py
# Step 2: distil the student (resumable: rerun with --resume to continue an interrupted run).
STUDENT_EPOCHS="${STUDENT_EPOCHS:-60}"
"$PY" -m starpose.cli train --ann-file data/distill/train.json --img-dir data/distill/images \
  --val-ann-file data/distill/val.json --val-img-dir data/distill/images --variant starpose_t \
  --epochs "$STUDENT_EPOCHS" --batch-size 16 --lr 2e-3 --no-scale-lr --warmup-iters 100 \
  --lr-steps "$((STUDENT_EPOCHS * 5 / 6)):0.3" --val-interval 5 --workers 2 --seed 0 \
  --photometric --weight-decay 0.05 --work-dir runs/distill_t
# Step 3: evaluate on held-out people and package the weights into the package.
"$PY" recipes/default_weights/package.py runs/distill_t/last.pt --variant starpose_t
