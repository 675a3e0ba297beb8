#!/usr/bin/env bash
# Rebuild the distillation set from scratch: teacher files, images, pseudo-labels.
# Usage: bash recipes/default_weights/run.sh   (PYTHON=/path/to/python to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
"$PY" recipes/default_weights/gather.py fetch-teacher
"$PY" recipes/default_weights/gather.py images
"$PY" recipes/default_weights/label.py
