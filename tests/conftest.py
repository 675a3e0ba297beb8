"""Shared test paths and small fixtures.

Real photos and labels (tiny COCO / CrowdPose / MPII slices) and the released network's golden
outputs are not copied into the repo: they are read in place from the project's shared data
folder ``../shared`` (beside the repository), through :func:`shared`, which skips the test and
names the missing folder where it is absent (a fresh clone has none). What the project
generates itself lives in ``tests/golden`` and ``tests/data`` (see its README).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

TESTS = Path(__file__).resolve().parent
SHARED = TESTS.parent.parent / "shared"

# Paths under ../shared; pass them to shared() to use them.
REFERENCE = "reference"
COCO_DIR = "fixtures/coco"
COCO_JSON = "fixtures/coco/test_coco.json"
COCO_DET = "fixtures/coco/test_coco_det_AP_H_56.json"
CROWD_DIR = "fixtures/crowdpose"
CROWD_JSON = "fixtures/crowdpose/test_crowdpose.json"
CROWD_DET = "fixtures/crowdpose/test_crowdpose_det_AP_40.json"
MPII_DIR = "fixtures/mpii"
MPII_JSON = "fixtures/mpii/test_mpii.json"


def shared(relative: str) -> Path:
    """``../shared/<relative>``, read in place. Where it is missing, the calling test (or
    fixture) is skipped with a reason that names the first missing folder."""
    path = SHARED / relative
    if not path.exists():
        missing = next(p for p in [SHARED, *reversed(path.parents), path] if not p.exists())
        pytest.skip(f"needs {missing}, which is absent: real fixtures and golden outputs are read "
                    f"in place from the project's shared data folder ({SHARED.name}/ beside the repository)")
    return path


@pytest.fixture(scope="session")
def seeded():
    """A seeded random starpose_t and its weights info (the exporters' test model)."""
    import torch

    from mobile_export.source import resolve_model

    torch.set_num_threads(1)
    return resolve_model("starpose_t", "random", seed=0)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    """The ``seeded`` model (starpose_t, random init, seed 0) exported once per session in every
    fp32 format (a few minutes on two cores) by the command a user runs, in its own process:
    ``starpose-mobile export --format all --weights random --seed 0``. What it printed is kept
    at :func:`export_log` (tests/test_cli_output.py counts it)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("exports")
    proc = subprocess.run([sys.executable, "-m", "starpose.cli", "export", "--format", "all", "--weights", "random",
                           "--seed", "0", "--no-detector", "--out", str(out)], cwd=TESTS.parent, capture_output=True, text=True,
                          timeout=3600)
    export_log(out).write_text(proc.stdout + proc.stderr, encoding="utf-8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def export_log(export_dir: Path) -> Path:
    """Where :func:`export_dir` keeps what the export command printed (beside the directory)."""
    return export_dir.with_name(export_dir.name + ".log")
