"""Quantization building blocks: the scheme table, the int8-ready rewrite, the node filter, the
calibration data, PTQ conversion and the QAT eval-mode check (no lowering here; see
test_quant_pipeline.py for artifacts in their runtimes)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from starpose.data import DataError
from starpose.models.deploy import BandedDepthwiseConv2d, reparameterize_model
from starpose.models.starpose import StarPose, StarPoseConfig
from starpose.spec import COCO_SPEC

from conftest import COCO_DIR, COCO_JSON, shared

import torchao  # noqa: F401  (an extra the test command installs: a broken install fails here)

from quantization import SCHEMES, get_scheme  # noqa: E402
from quantization.calibration import calibration_batches, calibration_loader, person_dataset, resolve_coco_source  # noqa: E402
from quantization.rewrite import SymmetricBandDepthwiseConv2d, int8_ready  # noqa: E402
from quantization.schemes import QuantizerSpec, _is_depthwise_conv, node_filter  # noqa: E402

SMALL = COCO_SPEC.with_input_size(96, 128)


def small_model(seed: int = 0) -> StarPose:
    """Every StarPose block type (one layer per stage, global and regional mixers, both stems'
    kinds of depthwise bands) at a 128x96 input: the real graph, fast enough for CPU tests."""
    torch.manual_seed(seed)
    cfg = StarPoseConfig(embed_dims=16, num_layers=(1, 1, 1, 1), input_size=(96, 128))
    return StarPose(cfg, spec=SMALL, variant="starpose_test").eval()


def _ops(gm: torch.fx.GraphModule, word: str) -> list[torch.fx.Node]:
    return [n for n in gm.graph.nodes if n.op == "call_function" and word in str(n.target)]


# --------------------------------------------------------------------------- schemes


def test_scheme_table():
    assert list(SCHEMES)[:4] == ["fp32", "fp16", "int8-ptq", "int8-qat"]
    ptq, qat = SCHEMES["int8-ptq"], SCHEMES["int8-qat"]
    assert ptq.precision == qat.precision == "int8"
    assert ptq.calibrate and not ptq.train and qat.train
    assert not ptq.executorch.qat and qat.executorch.qat
    assert ptq.executorch.per_channel and ptq.tflite.per_channel
    assert SCHEMES["int8-dynamic"].tflite.dynamic and SCHEMES["int8-dynamic"].offers == ("tflite",)
    assert ptq.coreml.weights == "int8" and SCHEMES["w4-palettized"].coreml.weights == "palettize4"
    assert SCHEMES["fp16"].coreml.compute_precision == "fp16" and SCHEMES["fp16"].executorch is None
    assert get_scheme("qat") is qat and get_scheme("int8-ptq") is ptq
    with pytest.raises(KeyError, match="known: fp32, fp16"):
        get_scheme("int4")
    with pytest.raises(ValueError, match="exclude each other"):
        QuantizerSpec("xnnpack", qat=True, dynamic=True)
    with pytest.raises(ValueError, match="quantizer library"):
        QuantizerSpec("tensorrt")
    json.dumps(ptq.to_dict())  # serializable into reports


def test_quantizer_configs_match_the_scheme():
    import executorch  # noqa: F401
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    q = SCHEMES["int8-ptq"].executorch.build()
    assert isinstance(q, XNNPACKQuantizer)
    cfg = q.global_config
    assert cfg.weight.qscheme == torch.per_channel_symmetric and (cfg.weight.quant_min, cfg.weight.quant_max) == (-127, 127)
    assert cfg.input_activation.qscheme == torch.per_tensor_affine and cfg.input_activation.dtype == torch.int8
    assert not cfg.is_qat and SCHEMES["int8-qat"].executorch.build().global_config.is_qat


# --------------------------------------------------------------------------- int8-ready rewrite


@pytest.mark.parametrize("dilation", [1, 3])
def test_symmetric_bands_equal_the_7x7_depthwise(dilation):
    torch.manual_seed(dilation)
    conv = nn.Conv2d(24, 24, 7, 1, 3 * dilation, dilation, groups=24)
    banded = BandedDepthwiseConv2d(conv)
    sym = SymmetricBandDepthwiseConv2d.from_banded(banded)
    x = torch.randn(2, 24, 20, 14)
    with torch.no_grad():
        ref = conv(x)
        assert torch.allclose(sym(x), ref, atol=1e-5)
        assert torch.allclose(banded(x), ref, atol=1e-5)
    assert all(c.kernel_size[0] * c.kernel_size[1] <= 25 for c in sym.convs)
    assert [c.kernel_size for c in sym.convs] == [(3, 7), (2, 7), (2, 7)]
    assert [c.dilation[0] for c in sym.convs] == [dilation, 4 * dilation, 6 * dilation]


def test_symmetric_bands_reject_what_they_cannot_express():
    w = torch.randn(4, 1, 6, 7)
    with pytest.raises(ValueError, match="even"):
        SymmetricBandDepthwiseConv2d(w, None, (3, 3), (1, 1))
    with pytest.raises(ValueError, match="not 'same'"):
        SymmetricBandDepthwiseConv2d(torch.randn(4, 1, 7, 7), None, (2, 3), (1, 1))


def test_int8_ready_network_has_no_pad_or_slice_and_same_outputs():
    from quantization.pt2e import capture
    from quantization.schemes import _kind_name

    model = small_model()
    deploy = reparameterize_model(model)
    # as a network reparameterized before the deploy form used symmetric groups: consecutive bands
    from benchmarks.deploy_ab import undo

    deploy = undo(deploy, ("bands",))
    assert any(isinstance(m, BandedDepthwiseConv2d) for m in deploy.modules())
    ready = int8_ready(deploy)
    assert not any(isinstance(m, BandedDepthwiseConv2d) for m in ready.modules())
    assert any(isinstance(m, BandedDepthwiseConv2d) for m in deploy.modules())  # the original is untouched
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        for a, b in zip(ready(x), model(x)):
            assert torch.allclose(a, b, atol=1e-4)
    gm = capture(ready)
    assert not _ops(gm, "pad")
    # the only slices: the two halves of a one-head attention's kᵀv (float, not between int8 ops)
    slices = _ops(gm, "slice")
    assert all(_kind_name(list(n.meta["nn_module_stack"].values())[-1][1]).endswith("LinearAttention")
               for n in slices), slices
    assert len(slices) == 2 * sum(1 for m in ready.modules() if getattr(m, "num_heads", 0) == 1)
    assert ready.spec == deploy.spec and ready.variant == "starpose_test"


def test_node_filter_keeps_head_norms_and_depthwise_float():
    from quantization.pt2e import capture
    from quantization.schemes import XNNPACK_INT8

    gm = capture(int8_ready(reparameterize_model(small_model())))
    keep = node_filter(XNNPACK_INT8)
    linears = _ops(gm, "aten.linear")
    assert len(linears) == 2 and not any(keep(n) for n in linears)  # the SimCC head
    convs = _ops(gm, "aten.conv2d")
    dw = [n for n in convs if _is_depthwise_conv(n)]
    assert dw and not any(keep(n) for n in dw)
    norm_convs = [n for n in convs if any("ChannelNorm" in str(t) for _, t in n.meta["nn_module_stack"].values())]
    assert norm_convs and not any(keep(n) for n in norm_convs)
    others = [n for n in convs if n not in dw and n not in norm_convs]
    assert others and all(keep(n) for n in others)
    everything = node_filter(QuantizerSpec("xnnpack", float_modules=()))
    assert all(everything(n) for n in convs + linears)


def test_node_filter_keeps_the_attention_summary_float():
    """The linear attention's ``kv · (1/n)`` gets no int8 observer after ``prepare`` (the
    quantizer sees its constant as a lifted tensor, not the float the capture holds); the star
    products do."""
    from quantization.pt2e import prepare
    from quantization.schemes import XNNPACK_INT8

    network = reparameterize_model(small_model())
    prepared = prepare(network, XNNPACK_INT8)

    def innermost(n):
        t = list(n.meta["nn_module_stack"].values())[-1][1]
        return t if isinstance(t, str) else t.__qualname__

    def observed(n):
        return any(u.op == "call_module" and "activation_post_process" in str(u.target) for u in n.users)

    muls = [n for n in _ops(prepared, "aten.mul") if n.meta.get("nn_module_stack")]
    summary = [n for n in muls if innermost(n).endswith("LinearAttention")]
    attentions = [m for m in network.modules() if type(m).__name__.endswith("LinearAttention")]
    assert attentions and len(summary) == len(attentions)
    assert not any(observed(n) for n in summary)
    # a one-head attention sums two half-length products before the 1/n: that sum is the same
    # summary (float too), and the capture (dynamic batch) takes that form
    one_head = [m for m in attentions if m.num_heads == 1]
    halves = [n.args[0] for n in summary if n.args[0].target == torch.ops.aten.add.Tensor]
    assert one_head and len(halves) == len(one_head)
    assert not any(observed(n) for n in halves)
    star = [n for n in muls if innermost(n).endswith(("StarFFN", "Mixer"))]
    assert star and all(observed(n) for n in star)  # the star products (two branches) stay int8


def test_scheme_with_more_float_modules():
    from quantization.pt2e import capture
    from quantization.schemes import check_float_modules, with_float_modules

    base = SCHEMES["int8-ptq"]
    more = with_float_modules(base, ["backbone.layers.1", "backbone.layers.1"])
    assert more.executorch.float_modules == base.executorch.float_modules + ("backbone.layers.1",)
    assert more.tflite.float_modules == more.executorch.float_modules
    assert "backbone.layers.1" in more.backend_config("executorch")["float_modules"]  # recorded in metadata
    assert "backbone.layers.1" not in base.executorch.float_modules  # the table itself is unchanged
    with pytest.raises(ValueError, match="no module path"):
        with_float_modules(base, [])
    with pytest.raises(ValueError, match="no PT2E int8 backend"):
        with_float_modules(SCHEMES["w4-palettized"], ["backbone.layers.1"])

    deploy = reparameterize_model(small_model())
    check_float_modules(deploy, more)
    check_float_modules(deploy, base)
    with pytest.raises(ValueError, match="no module 'backbone.layer.1'.*backbone.layers"):
        check_float_modules(deploy, with_float_modules(base, ["backbone.layer.1"]))

    gm = capture(int8_ready(deploy))
    keep_base, keep_more = node_filter(base.executorch), node_filter(more.executorch)

    def in_stage(n):
        return any(str(p).endswith("backbone.layers.1") for p, _ in n.meta["nn_module_stack"].values())

    stage_convs = [n for n in _ops(gm, "aten.conv2d") if in_stage(n) and keep_base(n)]
    assert stage_convs and not any(keep_more(n) for n in stage_convs)
    others = [n for n in _ops(gm, "aten.conv2d") if not in_stage(n) and keep_base(n)]
    assert others and all(keep_more(n) for n in others)


def test_int8_depthwise_variant_of_a_scheme():
    from quantization.pt2e import capture
    from quantization.schemes import with_int8_depthwise

    base = SCHEMES["int8-ptq"]
    dw = with_int8_depthwise(base)
    assert dw.name == base.name and dw.coreml == base.coreml
    assert not dw.executorch.float_depthwise and not dw.tflite.float_depthwise
    assert dw.executorch.library == "xnnpack" and dw.tflite.library == "litert"
    assert dw.backend_config("executorch")["float_depthwise"] is False
    assert base.executorch.float_depthwise  # the table itself is unchanged
    assert with_int8_depthwise(SCHEMES["int8-qat"]).executorch.qat
    with pytest.raises(ValueError, match="no PT2E int8 backend"):
        with_int8_depthwise(SCHEMES["w4-palettized"])

    gm = capture(int8_ready(reparameterize_model(small_model())))
    keep = node_filter(dw.executorch)
    convs = _ops(gm, "aten.conv2d")
    depthwise = [n for n in convs if _is_depthwise_conv(n)]
    assert depthwise and all(keep(n) for n in depthwise)
    assert not any(keep(n) for n in _ops(gm, "aten.linear"))  # the head stays float
    norm_convs = [n for n in convs if any("ChannelNorm" in str(t) for _, t in n.meta["nn_module_stack"].values())]
    assert norm_convs and not any(keep(n) for n in norm_convs)


# --------------------------------------------------------------------------- calibration data


def test_coco_source_resolution(tmp_path):
    src = resolve_coco_source(shared(COCO_JSON))
    assert src.ann_file == shared(COCO_JSON) and src.image_dir == shared(COCO_DIR)
    assert resolve_coco_source(shared(COCO_DIR)).ann_file == shared(COCO_JSON)
    with pytest.raises(DataError, match="no such annotation file"):
        resolve_coco_source(tmp_path / "missing.json")
    with pytest.raises(DataError, match="expected one COCO keypoints json"):
        resolve_coco_source(tmp_path)
    with pytest.raises(DataError, match="images folder not found"):
        resolve_coco_source(shared(COCO_JSON), tmp_path / "nope")
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(DataError, match="annotations"):
        person_dataset(resolve_coco_source(bad), SMALL)


def test_calibration_loader_yields_normalized_person_crops():
    src = resolve_coco_source(shared(COCO_JSON))
    loader = calibration_loader(src, SMALL, batch_size=4, limit=6)
    batches = list(calibration_batches(loader))
    assert [b.shape[0] for b in batches] == [4, 2]
    x = torch.cat(batches)
    assert x.shape[1:] == (3, 128, 96) and x.dtype == torch.float32
    assert -3.0 < float(x.min()) < -1.0 and 1.0 < float(x.max()) < 3.0  # (pixel - mean) / std of real photos


def test_calibration_limit_spreads_people_over_the_file():
    from quantization.calibration import spread_indices
    from quantization.export import QuantizedExport

    assert spread_indices(10, 3) == [0, 3, 6]
    assert spread_indices(14, 6) == [0, 2, 4, 7, 9, 11]
    assert spread_indices(5, 9) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="at least 1 person"):
        spread_indices(5, 0)
    src = resolve_coco_source(shared(COCO_JSON))
    every = torch.cat(list(calibration_batches(calibration_loader(src, SMALL, batch_size=16))))
    five = torch.cat(list(calibration_batches(calibration_loader(src, SMALL, batch_size=2, limit=5))))
    assert five.shape[0] == 5
    assert torch.equal(five, every[spread_indices(every.shape[0], 5)])  # those people, in file order
    job = QuantizedExport(reparameterize_model(small_model()), None, SCHEMES["int8-ptq"], Path("unused"),
                          calibration=src, calibration_limit=3, batch_size=2)
    assert [b.shape[0] for b in job.batches()] == [2, 1]


def test_report_feeds_artifacts_the_datasets_own_pixels():
    """AP evaluation turns each normalized dataset crop back into the uint8 crop it came from:
    normalizing that again must give the dataset's tensor (so the artifact sees those pixels)."""
    from starpose.processing import normalize_image

    from quantization.report import _uint8_crop

    ds = person_dataset(resolve_coco_source(shared(COCO_JSON)), SMALL)
    for i in range(len(ds)):
        x = ds[i]["image"]
        crop = _uint8_crop(x, SMALL)
        assert crop.dtype == np.uint8 and crop.shape == (128, 96, 3)
        np.testing.assert_allclose(normalize_image(crop, SMALL.mean, SMALL.std), x.numpy(), atol=1e-5)


# --------------------------------------------------------------------------- PT2E


def test_ptq_converts_the_deploy_graph_with_float_head_and_norms():
    import executorch  # noqa: F401
    from quantization.pt2e import quantize_ptq

    model = small_model()
    deploy = reparameterize_model(model)
    src = resolve_coco_source(shared(COCO_JSON))
    qnet = quantize_ptq(deploy, SCHEMES["int8-ptq"], calibration_batches(calibration_loader(src, SMALL, batch_size=6)))
    assert qnet.calibration["crops"] == 12 and qnet.spec == SMALL  # the labelled non-crowd people
    gm = qnet.graph_module
    quantize = _ops(gm, "quantize_per_tensor")
    assert len(quantize) > 20
    for linear in _ops(gm, "aten.linear"):  # float head: no quantized weight, output not quantized
        assert "dequantize" not in str(linear.args[1].target if hasattr(linear.args[1], "target") else "")
        assert not any("quantize" in str(u.target) for u in linear.users)
    x = torch.cat(list(calibration_batches(calibration_loader(src, SMALL, batch_size=12))))
    with torch.no_grad():
        ref, out = deploy(x), qnet(x)
    for r, o in zip(ref, out):
        rel = float((r - o).abs().max() / r.abs().max())
        assert 0 < rel < 0.15, rel  # quantized (not identical), and close


def _conv_bn_network() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(2))

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = net

        def forward(self, x):
            f = self.body(x)
            return f[:, :, :8], f[:, :, 8:16]

    return Head().eval()


def test_qat_graph_has_no_batchnorm_and_keeps_eval_outputs():
    import executorch  # noqa: F401
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from quantization.pt2e import prepare
    from quantization.qat import eval_mode_check

    deploy = reparameterize_model(small_model())
    prepared = prepare(deploy, SCHEMES["int8-qat"].executorch)
    images = torch.cat(list(calibration_batches(calibration_loader(resolve_coco_source(shared(COCO_JSON)), SMALL, batch_size=4,
                                                                   limit=4))))
    prepared(images)  # one training-mode pass: the moving-average observers see real crops
    report = eval_mode_check(prepared, images, reference=int8_ready(deploy))
    assert report.batch_norm_ops == 0 and report.max_abs_change == 0.0 and report.ok
    assert 0 < report.max_abs_vs_float < 0.5
    assert any(p.requires_grad for p in prepared.parameters())

    # Control: a graph that does carry BatchNorm is caught.
    toy = torch.export.export(_conv_bn_network(), (torch.randn(2, 3, 8, 8),)).module()
    bn_prepared = prepare_qat_pt2e(toy, SCHEMES["int8-qat"].executorch.build())
    assert not eval_mode_check(bn_prepared, torch.randn(2, 3, 8, 8)).ok


def test_qat_toward_the_fp32_model(tmp_path, monkeypatch):
    """``targets="fp32"``: the loss is the KL from the float network's own SimCC distributions
    (zero for the float network itself), the float network is never moved, and a run cannot be
    resumed with the other kind of targets."""
    import executorch  # noqa: F401
    from starpose.data import KLDiscretLoss
    from quantization.qat import QATConfig, _Fp32Targets, train_qat

    with pytest.raises(ValueError, match="targets must be one of labels, fp32"):
        QATConfig(targets="teacher")
    deploy = reparameterize_model(small_model())
    before = {k: v.clone() for k, v in deploy.state_dict().items()}
    src = resolve_coco_source(shared(COCO_JSON))
    batch = {"image": torch.cat(list(calibration_batches(calibration_loader(src, SMALL, batch_size=4, limit=4))))}
    targets = _Fp32Targets(deploy)
    (tx, ty), weight = targets(batch)
    assert weight.shape == tx.shape[:2] and bool((weight == 1).all())
    criterion = KLDiscretLoss(label_softmax=True, use_target_weight=True)
    with torch.no_grad():
        assert float(criterion(deploy(batch["image"]), (tx, ty), weight)) == pytest.approx(0.0, abs=1e-6)
        assert float(criterion((tx.flip(0), ty.flip(0)), (tx, ty), weight)) > 1e-4  # other crops' curves: not zero

    cfg = QATConfig(epochs=1, batch_size=6, max_steps=2, lr=1e-3, targets="fp32")
    qat = train_qat(deploy, src, tmp_path, cfg, progress=False, log=lambda m: None)
    assert np.isfinite(qat.history[0]["loss"]) and qat.eval_check.ok
    assert all(torch.equal(before[k], v) for k, v in deploy.state_dict().items())  # the float model stays put
    assert json.loads(torch.load(qat.checkpoint, weights_only=True)["config"])["targets"] == "fp32"
    with pytest.raises(ValueError, match="resume it with --targets fp32"):
        train_qat(deploy, src, tmp_path, QATConfig(epochs=2, batch_size=6, max_steps=3), resume=True, progress=False,
                  log=lambda m: None)
    import quantization.schemes

    with monkeypatch.context() as m:  # resumed by a version that quantized the attention's key-value summary
        m.setattr(quantization.schemes, "_is_attention_summary", lambda node: False)
        with pytest.raises(ValueError, match="different choice of int8 ops"):
            train_qat(deploy, src, tmp_path, QATConfig(epochs=2, batch_size=6, max_steps=3, targets="fp32"),
                      resume=True, progress=False, log=lambda m: None)


def test_unreadable_qat_checkpoint_names_its_path_once(tmp_path):
    from quantization.qat import _read_checkpoint

    bad = tmp_path / "qat_last.pt"
    bad.write_bytes(b"junk")
    with pytest.raises(ValueError) as e:
        _read_checkpoint(bad)
    assert str(e.value).count("qat_last.pt") == 1 and "not a readable training checkpoint" in str(e.value)
