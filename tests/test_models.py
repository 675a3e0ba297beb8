"""Contract of every registered variant (timm-style): build, forward, exact parameters, keys, MACs."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import starpose
from starpose import COCO_SPEC, CROWDPOSE_SPEC, MPII_SPEC, create_model, list_models

from conftest import REFERENCE, shared

VARIANTS = ["starpose_t", "starpose_s", "starpose_m", "starpose_l"]


def manifest(name: str) -> dict:
    return json.loads((shared(REFERENCE) / f"{name.replace('starpose_', 'starpose_')}_manifest.json").read_text())


def test_registry_lists_the_four_variants():
    assert list_models() == sorted(VARIANTS)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("starpose_xl")


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_matches_release_manifest(name):
    man = manifest(name)
    model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == man["params"]
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == man["state_dict"]
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 256, 192))
    gmacs = counter.get_total_flops() / 2 / 1e9
    assert gmacs == pytest.approx(man["gmacs_256x192"], rel=0.02)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("hw", [(256, 192), (384, 288)])
def test_forward_shapes(name, hw):
    h, w = hw
    model = create_model(name, input_size=(w, h)).eval()
    with torch.no_grad():
        sx, sy = model(torch.randn(2, 3, h, w))
        feats = model.forward_features(torch.randn(1, 3, h, w))
    assert sx.shape == (2, 17, w * 2) and sy.shape == (2, 17, h * 2)
    assert feats.shape[-2:] == (h // 32, w // 32)
    assert model.spec.input_size == (w, h)
    assert torch.isfinite(sx).all() and torch.isfinite(sy).all()


def test_mpii_and_crowdpose_heads_follow_the_spec():
    m = create_model("starpose_t", spec=MPII_SPEC).eval()
    with torch.no_grad():
        sx, sy = m(torch.randn(1, 3, 256, 256))
    assert sx.shape == (1, 16, 512) and sy.shape == (1, 16, 512)
    assert m.head.mlp_head_x.in_features == 64
    c = create_model("starpose_s", num_keypoints=14)
    assert c.spec is CROWDPOSE_SPEC and c.head.final_layer.out_channels == 14


def test_bad_overrides_fail_clearly():
    with pytest.raises(ValueError, match="multiple of 32"):
        create_model("starpose_t", input_size=(190, 256))
    with pytest.raises(ValueError, match="matches no known PoseSpec"):
        create_model("starpose_t", num_keypoints=5)


def test_train_mode_uses_stochastic_depth_and_eval_is_deterministic():
    m = create_model("starpose_t")
    rates = [layer.drop_path.p for stage in m.backbone.layers for layer in stage[1]]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)
    m.eval()
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        a, b = m(x), m(x)
    assert torch.equal(a[0], b[0])


def test_public_api():
    assert starpose.COCO_SPEC is COCO_SPEC
    assert callable(starpose.load_mmpose_checkpoint)


def test_variant_arguments_can_be_overridden():
    m = create_model("starpose_t", embed_dims=20, num_layers=(2, 2, 3, 2), structure="CP")
    assert m.cfg.embed_dims == 20 and m.cfg.structure == "CP" and hasattr(m.backbone, "prmv1")


@pytest.mark.parametrize("n,c,h,w,k,d", [(2, 8, 16, 12, 7, 3), (3, 5, 17, 11, 5, 2), (1, 4, 7, 5, 3, 4), (2, 6, 2, 3, 7, 3)])
def test_dilated_depthwise_by_phases_is_the_dilated_convolution(n, c, h, w, k, d):
    """Outputs and all three gradients as the dilated convolution's, also where H and W are not
    multiples of the dilation (padded up, cropped back) or smaller than the kernel's reach."""
    from starpose.models.starpose import _by_phases, dilated_depthwise_by_phases

    torch.manual_seed(n * 100 + h)
    conv = torch.nn.Conv2d(c, c, k, 1, d * (k // 2), d, groups=c)
    assert _by_phases(conv)
    x = torch.randn(n, h, w, c).permute(0, 3, 1, 2).requires_grad_(True)  # channels-last, as in the model
    want = conv(x)
    got = dilated_depthwise_by_phases(conv, x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    g = torch.randn_like(want)
    for a, b in zip(torch.autograd.grad(want, [x, conv.weight, conv.bias], g),
                    torch.autograd.grad(got, [x, conv.weight, conv.bias], g)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-4)


def test_only_same_padded_stride_one_dilated_depthwise_convolutions_go_by_phases():
    from starpose.models.starpose import _by_phases

    assert not _by_phases(torch.nn.Conv2d(4, 4, 7, 1, 3, groups=4))  # no dilation: nothing to gain
    assert not _by_phases(torch.nn.Conv2d(4, 4, 7, 2, 9, 3, groups=4))  # strided
    assert not _by_phases(torch.nn.Conv2d(4, 4, 7, 1, 3, 3, groups=4))  # not 'same'
    assert not _by_phases(torch.nn.Conv2d(4, 8, 7, 1, 9, 3, groups=4))  # not depthwise
    assert not _by_phases(torch.nn.Conv2d(4, 4, 7, 1, 9, 3, groups=4, padding_mode="reflect"))


def test_regional_mixer_gives_the_same_outputs_and_gradients_either_way():
    from starpose.models.starpose import RegionalMixer

    torch.manual_seed(0)
    mixer = RegionalMixer(16).train()
    x = torch.randn(2, 13, 10, 16, requires_grad=True)  # NHWC, odd sizes
    outs = []
    try:
        for flag in (False, True):
            RegionalMixer.dilated_by_phases = flag
            y = mixer(x)
            outs.append((y, torch.autograd.grad(y.square().sum(), [x, mixer.dwc[0].weight])))
    finally:
        RegionalMixer.dilated_by_phases = True
    (y0, g0), (y1, g1) = outs
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
