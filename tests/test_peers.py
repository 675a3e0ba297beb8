"""The peer networks are faithful to MMPose: same state-dict keys and shapes, parameter counts,
MACs (torch flop counter / 2) within 2 %, and output shapes, per peers_manifest.json."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.peers import create_peer, list_peers

from conftest import REFERENCE, shared

PEERS = sorted(list_peers())


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(shared(f"{REFERENCE}/peers_manifest.json").read_text())


def test_registry_covers_the_manifest(manifest):
    assert set(PEERS) == set(manifest)
    with pytest.raises(ValueError, match="unknown peer"):
        create_peer("litehrnet_99")


@pytest.mark.parametrize("name", PEERS)
def test_state_dict_matches_mmpose(name, manifest):
    ref = manifest[name]["state_dict"]
    ours = {k: list(v.shape) for k, v in create_peer(name).state_dict().items()}
    assert sorted(set(ref) - set(ours)) == [], "keys MMPose has and we lack"
    assert sorted(set(ours) - set(ref)) == [], "keys we have and MMPose lacks"
    assert {k: v for k, v in ours.items() if v != list(ref[k])} == {}


@pytest.mark.parametrize("name", PEERS)
def test_params_macs_and_outputs(name, manifest):
    torch.manual_seed(0)
    ref = manifest[name]
    net = create_peer(name)
    assert not net.training
    assert sum(p.numel() for p in net.parameters()) == ref["params"]
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = net(x)
    outs = out if isinstance(out, tuple) else (out,)
    assert [list(o.shape) for o in outs] == ref["output_shapes"]
    assert all(torch.isfinite(o).all() for o in outs)
    gmacs = counter.get_total_flops() / 2 / 1e9
    assert gmacs == pytest.approx(ref["gmacs_256x192"], rel=0.02)


@pytest.mark.parametrize("name", PEERS)
def test_output_depends_on_input_everywhere_it_should(name):
    """A real forward pass, not a constant: different crops give different outputs, batch rows
    are independent."""
    torch.manual_seed(0)
    net = create_peer(name)
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        both = net(x)
        first = net(x[:1])
    both = both if isinstance(both, tuple) else (both,)
    first = first if isinstance(first, tuple) else (first,)
    for b, f in zip(both, first):
        scale = float(f.abs().max())
        torch.testing.assert_close(b[:1], f, rtol=1e-4, atol=1e-4 * scale)
        assert (b[0] - b[1]).abs().max() > 1e-2 * scale
