"""The network is exact: with the official state dicts, outputs equal the release's (<= 1e-4)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from starpose import StarPose, StarPoseConfig, load_mmpose_checkpoint

from conftest import REFERENCE, shared

TOL = 1e-4


def _golden(name: str):
    return load_file(str(shared(f"{REFERENCE}/starpose_{name}_golden.safetensors")))


def _model_from_manifest(name: str) -> StarPose:
    c = json.loads((shared(REFERENCE) / f"starpose_{name}_manifest.json").read_text())["config"]
    return StarPose(StarPoseConfig(embed_dims=c["embed_dims"], num_layers=tuple(c["num_layers"]),
                                   prm_ratio=tuple(c["prm_ratio"]), dr_ratio=tuple(c["dr_ratio"]),
                                   structure=c["structure"]))


@pytest.mark.parametrize("name", ["t", "cpmini"])
def test_golden_outputs(name):
    g = _golden(name)
    model = _model_from_manifest(name)
    model.load_state_dict({k[len("model."):]: v for k, v in g.items() if k.startswith("model.")}, strict=True)
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(g["input"])
        sx, sy = model.forward_head(feats)
    assert (feats - g["backbone_out"]).abs().max() <= TOL
    assert (sx - g["simcc_x"]).abs().max() <= TOL
    assert (sy - g["simcc_y"]).abs().max() <= TOL


def test_golden_through_the_public_loader():
    g = _golden("t")
    model = load_mmpose_checkpoint({k: v for k, v in g.items() if k.startswith("model.")}, "t")
    with torch.no_grad():
        sx, sy = model(g["input"])
    assert (sx - g["simcc_x"]).abs().max() <= TOL and (sy - g["simcc_y"]).abs().max() <= TOL
