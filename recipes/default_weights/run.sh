#!/usr/bin/env bash
# Rebuild the default StarPose-t weights: teacher files, teacher labels, training, packaging.
# Usage: bash recipes/default_weights/run.sh   (PYTHON=/path/to/python to pick the interpreter)
#
# Reads the people of ../shared/people in place (never copies them). Each step can be run alone
# and resumes where it stopped; see recipes/default_weights/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# 1. BlazePose teacher files from their registry packages (mediapipe wheel, @mediapipe/pose npm).
"$PY" recipes/default_weights/gather.py fetch-teacher
# 2. The validation photos are fixed in holdout.json (committed); split.py rewrites the same file.
"$PY" recipes/default_weights/split.py
# 3. Teacher labels where humans left gaps (ccp/ photos, LSPET face points) and the teacher's own
#    score on the validation people (results/teacher_val.json).
"$PY" recipes/default_weights/teacher_people.py all
# 4. Train on the people mix, starting from the packaged weights (EPOCHS, RUN_DIR, INIT to change).
unset OMP_NUM_THREADS
PYTHON="$PY" bash recipes/default_weights/train_people.sh --quiet
# 5. Score on the validation people and package (release only when every goal holds).
"$PY" recipes/default_weights/package.py "${RUN_DIR:-runs/people_t}/best.safetensors"
