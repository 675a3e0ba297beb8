"""The weights shipped in the package load everywhere `--weights default` is used."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from starpose import create_model
from starpose.models.weights import available_pretrained, default_keypoint_threshold, weights_path


def test_packaged_default_weights_load_and_carry_their_provenance():
    assert "starpose_t" in available_pretrained()
    model = create_model("starpose_t", pretrained=True).eval()
    fresh = create_model("starpose_t")
    # really trained weights, not an initialisation
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    with safe_open(str(weights_path("starpose_t")), "pt") as f:
        meta = f.metadata()
    summary = json.loads(meta["summary"])
    assert summary["variant"] == "starpose_t"
    # scored on every held-out, human-labelled set of the recipe and on the COCO fixture
    assert {"lspet", "stock17", "coco", "fixture"} <= set(summary["validation"])
    assert float(meta["coco_fixture_ap_gt_boxes"]) == pytest.approx(summary["validation"]["fixture"]["AP"], abs=1e-4)
    # "release" exactly when every goal of the recipe holds
    assert meta["status"] == summary["status"] == ("release" if all(summary["goals"].values()) else "interim")
    assert default_keypoint_threshold("starpose_t") == pytest.approx(float(meta["keypoint_threshold"]))
    with pytest.raises(FileNotFoundError, match="no pretrained weights for starpose_l"):
        create_model("starpose_l", pretrained=True)


def test_interim_weights_warn_when_loaded():
    with safe_open(str(weights_path("starpose_t")), "pt") as f:
        status = f.metadata().get("status", "release")
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_model("starpose_t", pretrained=True)
    interim = [w for w in caught if "interim checkpoint" in str(w.message)]
    assert len(interim) == (0 if status == "release" else 1)
