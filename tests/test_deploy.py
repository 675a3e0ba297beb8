"""The deploy form computes what the released network computes, and lowers whole to XNNPACK."""
from __future__ import annotations

import collections
import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

from starpose.models import StarPose, StarPoseConfig, create_model, list_models
from starpose.models.deploy import (BandedDepthwiseConv2d, StarPoseDeploy, SymmetricBandDepthwiseConv2d,
                                   depthwise_for_xnnpack, reparameterize_model)
from starpose.processing import bbox_xywh_to_cs, normalize_image, top_down_affine
from starpose.spec import COCO_SPEC

from conftest import COCO_DIR, COCO_JSON, REFERENCE, shared

TOL = 1e-4


def _golden_model(name: str) -> tuple[StarPose, dict[str, torch.Tensor]]:
    ref = shared(REFERENCE)
    golden = load_file(str(ref / f"starpose_{name}_golden.safetensors"))
    if name == "t":
        model = create_model("starpose_t")
    else:
        cfg = json.loads((ref / f"starpose_{name}_manifest.json").read_text())["config"]
        model = StarPose(StarPoseConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
    model.load_state_dict({k[len("model."):]: v for k, v in golden.items() if k.startswith("model.")})
    return model.eval(), golden


def _real_crop() -> torch.Tensor:
    coco = json.loads(shared(COCO_JSON).read_text())
    ann = coco["annotations"][0]
    image = next(i for i in coco["images"] if i["id"] == ann["image_id"])
    bgr = cv2.imread(str(shared(COCO_DIR) / image["file_name"]))
    assert bgr is not None
    center, scale = bbox_xywh_to_cs(np.array(ann["bbox"]), COCO_SPEC.input_size)
    crop, _ = top_down_affine(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), center, scale, COCO_SPEC.input_size)
    return torch.from_numpy(normalize_image(crop, COCO_SPEC.mean, COCO_SPEC.std))[None]


@torch.no_grad()
def _randomize_statistics(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm statistics and norm affines, so every folded parameter matters."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model.eval()


@pytest.mark.parametrize("name", ["t", "cpmini"])
def test_deploy_matches_golden(name):
    model, golden = _golden_model(name)
    deploy = reparameterize_model(model)
    assert isinstance(deploy, StarPoseDeploy) and deploy is not model
    x = golden["input"]
    with torch.no_grad():
        feats = deploy.forward_features(x)
        sx, sy = deploy(x)
        ex, ey = model(x)
    assert (feats - golden["backbone_out"]).abs().max() <= TOL
    assert (sx - golden["simcc_x"]).abs().max() <= TOL
    assert (sy - golden["simcc_y"]).abs().max() <= TOL
    assert (sx - ex).abs().max() <= TOL and (sy - ey).abs().max() <= TOL


def test_source_model_is_left_untouched():
    model, golden = _golden_model("t")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reparameterize_model(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert (model(golden["input"])[0] - golden["simcc_x"]).abs().max() <= TOL


@pytest.mark.parametrize("variant", list_models())
def test_every_variant_deploy_equals_eager_on_a_real_crop(variant):
    torch.manual_seed(0)
    model = _randomize_statistics(create_model(variant), seed=1)
    deploy = reparameterize_model(model)
    x = _real_crop()
    with torch.no_grad():
        eager = model(x)
        ours = deploy(x)
    for e, d in zip(eager, ours):
        assert d.shape == e.shape
        assert (d - e).abs().max() <= TOL
    # the crop matters: a different crop gives different SimCC vectors
    with torch.no_grad():
        flipped = deploy(x.flip(-1))
    assert (flipped[0] - ours[0]).abs().max() > 1e-3
    assert deploy.spec == model.spec and deploy.variant == model.variant


def test_deploy_graph_is_nchw_and_free_of_ops_mobile_delegates_reject():
    """Fast structural check of the exported deploy graph (the ExecuTorch lowering itself is the
    slow test below): no LayerNorm, ELU, expand, reciprocal, token-axis mean, 4-D permute or
    BatchNorm, and no 7x7 depthwise kernels (XNNPACK runs > 25 taps as a grouped GEMM)."""
    model, golden = _golden_model("t")
    ep = torch.export.export(reparameterize_model(model), (golden["input"],)).run_decompositions()
    targets = collections.Counter()
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        targets[name.split(".")[0]] += 1
        if name.startswith("permute"):
            assert len(node.args[1]) < 4, "4-D permute: the deploy form must stay NCHW"
        if name.startswith("mean"):
            assert sorted(d % 4 for d in node.args[1]) == [2, 3], "mean over a non-spatial axis"
        if name.startswith("convolution"):
            weight = node.args[1].meta["val"]
            groups = node.args[8]
            if groups > 1 and groups == weight.shape[0]:
                assert weight.shape[2] * weight.shape[3] <= 25, f"depthwise kernel {tuple(weight.shape)}"
    for banned in ("native_layer_norm", "layer_norm", "elu", "expand", "reciprocal",
                   "_native_batch_norm_legit_no_training", "native_batch_norm", "constant_pad_nd"):
        assert targets[banned] == 0, (banned, targets)
    # no pad/slice per depthwise band (symmetric row groups pad by themselves); the
    # only slices left are the two halves of the one-head attention's kᵀv (stage 1 of -t)
    assert targets["slice"] <= 2, targets["slice"]
    assert targets["convolution"] > 0 and targets["bmm"] > 0


@pytest.mark.parametrize("dilation", [1, 3])
def test_large_depthwise_kernels_become_symmetric_row_groups(dilation):
    torch.manual_seed(dilation)
    conv = nn.Conv2d(24, 24, 7, 1, 3 * dilation, dilation, groups=24)
    sym = depthwise_for_xnnpack(conv)
    assert isinstance(sym, SymmetricBandDepthwiseConv2d)
    assert [c.kernel_size for c in sym.convs] == [(3, 7), (2, 7), (2, 7)]
    assert [c.dilation[0] for c in sym.convs] == [dilation, 4 * dilation, 6 * dilation]
    assert all(c.padding[0] * 2 == c.dilation[0] * (c.kernel_size[0] - 1) for c in sym.convs)  # 'same'
    x = torch.randn(2, 24, 20, 14)
    with torch.no_grad():
        assert (sym(x) - conv(x)).abs().max() <= 1e-5
    # what symmetric groups cannot express falls back to consecutive bands (pad + slices)
    even = nn.Conv2d(8, 8, (6, 7), 1, 3, groups=8)
    assert isinstance(depthwise_for_xnnpack(even), BandedDepthwiseConv2d)
    assert isinstance(depthwise_for_xnnpack(nn.Conv2d(8, 8, 3, 1, 1, groups=8)), nn.Conv2d)


def test_deploy_model_uses_symmetric_groups_for_every_large_kernel():
    deploy = reparameterize_model(create_model("starpose_t").eval())
    kinds = collections.Counter(type(m).__name__ for m in deploy.modules())
    assert kinds["SymmetricBandDepthwiseConv2d"] == 11 and kinds["BandedDepthwiseConv2d"] == 0
    for m in deploy.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            assert m.kernel_size[0] * m.kernel_size[1] <= 25


def test_banded_depthwise_conv_equals_the_large_kernel():
    torch.manual_seed(0)
    for conv in (nn.Conv2d(8, 8, 7, 1, 9, dilation=3, groups=8), nn.Conv2d(8, 8, 7, 1, 3, groups=8)):
        banded = BandedDepthwiseConv2d(conv)
        assert all(b.kernel_size[0] * b.kernel_size[1] <= 25 for b in banded.bands)
        x = torch.randn(2, 8, 13, 11)
        with torch.no_grad():
            assert (banded(x) - conv(x)).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="stride-1 depthwise"):
        BandedDepthwiseConv2d(nn.Conv2d(8, 8, 7, 2, 3, groups=8))


def test_rejects_non_starpose():
    with pytest.raises(TypeError, match="StarPose"):
        reparameterize_model(nn.Conv2d(3, 3, 1))


def _lower_to_executorch(model: nn.Module, x: torch.Tensor):
    import executorch  # noqa: F401
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    return to_edge_transform_and_lower(torch.export.export(model, (x,)), partitioner=[XnnpackPartitioner()])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["t", "cpmini"])
def test_deploy_lowers_to_one_xnnpack_subgraph_with_nothing_on_the_portable_path(name, measured):
    model, golden = _golden_model(name)
    lowered = _lower_to_executorch(reparameterize_model(model), golden["input"])
    calls = collections.Counter(
        str(n.target) for n in lowered.exported_program().graph.nodes
        if n.op == "call_function" and "getitem" not in str(n.target)
    )
    measured(f"{name} deploy form in ExecuTorch: calls outside XNNPACK", dict(calls))
    assert calls == {"executorch_call_delegate": 1}, calls

    from executorch.runtime import Runtime

    program = Runtime.get().load_program(lowered.to_executorch().buffer)
    out = program.load_method("forward").execute([golden["input"]])
    diff = max(float((out[0] - golden["simcc_x"]).abs().max()), float((out[1] - golden["simcc_y"]).abs().max()))
    measured(f"{name} deploy .pte against the golden SimCC outputs: max |diff|", diff)
    assert diff <= TOL


@pytest.mark.slow
def test_deploy_runs_every_op_in_litert_xnnpack(measured):
    """LiteRT: one XNNPACK partition, nothing left on the interpreter (the single-head kᵀv is
    computed as a batch-2 BATCH_MATMUL, not a batch-1 FULLY_CONNECTED with activation weights)."""
    import litert_torch  # noqa: F401
    from benchmarks.common import litert_delegation, to_litert

    model, golden = _golden_model("t")
    report = litert_delegation(to_litert(reparameterize_model(model), golden["input"]))
    measured("t deploy form in LiteRT: XNNPACK partitions, ops outside",
             (report["delegated_subgraphs"], report["non_delegated_by_op"]))
    assert (report["delegated_subgraphs"], report["non_delegated_by_op"]) == (1, {}), report


def test_delegation_counter_sees_what_stays_on_the_portable_path():
    """The benchmark's counter (used for the numbers in benchmarks/results) on a graph with a
    known gap: XNNPACK has no ELU, so conv → ELU → conv is two subgraphs and one portable op."""
    import executorch  # noqa: F401
    from benchmarks.common import executorch_delegation

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ELU(), nn.Conv2d(8, 8, 1)).eval()
    report = executorch_delegation(_lower_to_executorch(net, torch.randn(1, 3, 16, 16)))
    assert report["delegated_subgraphs"] == 2
    assert report["non_delegated_by_op"] == {"aten.elu.default": 1}


def test_deploy_ab_undoes_rewrites_without_changing_the_function():
    """``benchmarks.deploy_ab`` times the deploy form against itself with rewrites undone: the
    undone copies must hold the earlier structure and compute the same outputs."""
    from benchmarks.deploy_ab import FORMS, undo
    from starpose.models.deploy import ChannelNorm

    torch.manual_seed(0)
    deploy = reparameterize_model(create_model("starpose_t").eval())
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        ref = deploy(x)
        for form, rewrites in FORMS.items():
            other = undo(deploy, rewrites)
            kinds = collections.Counter(type(m).__name__ for m in other.modules())
            assert (kinds["BandedDepthwiseConv2d"] == 11) == ("bands" in rewrites), form
            eps = [m.eps_tensor for m in other.modules() if isinstance(m, ChannelNorm)]
            assert len(eps) == 30 and all(isinstance(e, torch.Tensor) != ("eps" in rewrites) for e in eps), form
            for a, b in zip(other(x), ref):
                assert (a - b).abs().max() <= TOL, form
    norms = [m for m in deploy.modules() if isinstance(m, ChannelNorm)]  # the original is untouched:
    assert len(norms) == 30 and all(tuple(m.eps_tensor.shape) == (1, 1, 1, 1) for m in norms)
    assert all("eps_tensor" not in key for key in deploy.state_dict())  # rebuilt from eps, never stored
