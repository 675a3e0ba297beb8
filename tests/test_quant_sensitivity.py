"""quantization.sensitivity: PTQ with parts of the network left float, measured like verify's int8."""
from __future__ import annotations

import numpy as np
import pytest

import torchao  # noqa: F401  (an extra the test command installs: a broken install fails here)

from mobile_export.parity import Crop
from mobile_export.source import deploy_network, resolve_model
from quantization.rewrite import int8_ready
from quantization.sensitivity import default_parts, sensitivity


def _crops(spec, n=3):
    rng = np.random.default_rng(0)
    eye = np.eye(3)[:2]
    out = []
    for i in range(n):
        # smooth images (a random walk), not white noise: structure the network responds to
        img = np.cumsum(rng.normal(0, 6, (spec.input_h, spec.input_w, 3)), axis=1)
        img = np.clip(img - img.min() + 20, 0, 255).astype(np.uint8)
        out.append(Crop(f"synthetic{i}", img, eye, eye))
    return out


@pytest.fixture(scope="module")
def network():
    model, _ = resolve_model("starpose_t", "random", seed=0)
    return deploy_network(model)


def test_default_parts_name_the_stem_every_stage_and_the_head(network):
    parts = default_parts(int8_ready(network))
    assert parts[0] == ()
    assert ("backbone.stem",) in parts and ("head.final_layer",) in parts
    assert [p for p in parts if len(p) == 1 and p[0].startswith("backbone.layers.")] == \
        [("backbone.layers.0",), ("backbone.layers.1",), ("backbone.layers.2",), ("backbone.layers.3",)]
    assert parts[-1] == tuple(f"backbone.layers.{i}" for i in range(4))


def test_an_unknown_module_is_named_before_any_quantization(network):
    with pytest.raises(ValueError, match="backbone.layers.9"):
        sensitivity(network, _crops(network.spec, 1), None, [("backbone.layers.9",)])
    with pytest.raises(ValueError, match="no parity crops"):
        sensitivity(network, [], None, [()])


@pytest.mark.slow
def test_int8_moves_the_output_and_leaving_everything_float_does_not(network):
    every = ("backbone.stem", *(f"backbone.layers.{i}" for i in range(4)), "head.final_layer")
    rows = sensitivity(network, _crops(network.spec), None, [(), every], progress=lambda m: None)
    quantized, floated = rows
    assert quantized["raw_max_abs"] > 1e-3  # int8 arithmetic changes the SimCC logits
    assert floated["float"] == list(every)
    assert floated["raw_max_abs"] < 1e-4 and floated["mean_kpt_px"] == 0.0 and floated["argmax_agreement"] == 1.0
    assert floated["verify_int8"] is True
