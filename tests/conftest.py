"""Shared test paths and small fixtures. Test data lives in tests/data (see its README)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
REFERENCE = DATA / "reference"
COCO_DIR = DATA / "coco"
COCO_JSON = COCO_DIR / "test_coco.json"
COCO_DET = COCO_DIR / "test_coco_det_AP_H_56.json"
CROWD_DIR = DATA / "crowdpose"
CROWD_JSON = CROWD_DIR / "test_crowdpose.json"
CROWD_DET = CROWD_DIR / "test_crowdpose_det_AP_40.json"
MPII_DIR = DATA / "mpii"
MPII_JSON = MPII_DIR / "test_mpii.json"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def seeded():
    """A seeded random starpose_t and its weights info (the exporters' test model)."""
    import torch

    from mobile_export.source import resolve_model

    torch.set_num_threads(1)
    return resolve_model("starpose_t", "random", seed=0)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory, seeded) -> Path:
    """``seeded`` exported once per session in every fp32 format (a few minutes on two cores)."""
    from mobile_export.export import export_formats, formats_for

    model, info = seeded
    out = tmp_path_factory.mktemp("exports")
    export_formats(model, info, formats_for("all", "fp32"), out)
    return out
