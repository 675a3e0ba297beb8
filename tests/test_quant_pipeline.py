"""int8 artifacts end to end, in their runtimes: a short QAT of the small StarPose on the COCO
fixture (a few steps, CPU), converted and exported as an XNNPACK ``.pte`` (run with
``executorch.runtime``), a LiteRT ``.tflite`` (run with the LiteRT interpreter) and a Core ML
``.mlpackage`` (its spec read back: Core ML itself needs macOS). One QAT run and one lowering per
format, shared by the tests of this module."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import COCO_JSON, shared
from test_quant import SMALL, small_model

import executorch  # noqa: F401  (an extra the test command installs: a broken install fails here)
import torchao  # noqa: F401  (an extra the test command installs: a broken install fails here)

from mobile_export.bundle import PoseBundle  # noqa: E402
from mobile_export.manifest import check_entry, read_manifest  # noqa: E402
from mobile_export.metadata import WeightsInfo, read_metadata_file, sidecar_path, state_dict_sha256  # noqa: E402
from mobile_export.parity import coco_crops  # noqa: E402
from mobile_export.verify import compare_io, expected_io  # noqa: E402
from quantization import SCHEMES  # noqa: E402
from quantization.calibration import resolve_coco_source  # noqa: E402
from quantization.export import QuantizedExport, export_quantized  # noqa: E402
from quantization.qat import QATConfig, load_qat, train_qat  # noqa: E402
from starpose.models.deploy import reparameterize_model  # noqa: E402


def _bytes_of(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


@pytest.fixture(scope="module")
def qat_artifacts(tmp_path_factory):
    model = small_model()
    deploy = reparameterize_model(model)
    info = WeightsInfo("starpose_test-seed0", state_dict_sha256(model.state_dict()), "random", 0)
    src = resolve_coco_source(shared(COCO_JSON))
    out = tmp_path_factory.mktemp("qat")
    initial = {k: v.clone() for k, v in deploy.state_dict().items()}
    qat = train_qat(deploy, src, out, QATConfig(epochs=2, batch_size=6, max_steps=3, lr=1e-3), progress=False,
                    log=lambda m: None, checkpoint_meta={"source_weights_sha256": info.sha256})
    job = QuantizedExport(deploy, info, SCHEMES["int8-qat"], out, calibration=src, qat=qat, raw=True)
    paths = export_quantized(job, ["executorch", "tflite", "coreml"])
    models = {p.suffix: p for p in paths if not p.name.endswith(".json")}
    return {"model": model, "deploy": deploy, "initial": initial, "qat": qat, "out": out, "paths": models,
            "crops": coco_crops(shared(COCO_JSON), SMALL)[:6], "info": info}


def test_qat_trains_checkpoints_and_reloads(qat_artifacts, monkeypatch):
    qat = qat_artifacts["qat"]
    assert [h["epoch"] for h in qat.history] == [1, 2] and all(np.isfinite(h["loss"]) for h in qat.history)
    assert qat.eval_check.ok and qat.eval_check.batch_norm_ops == 0
    state = torch.load(qat.checkpoint, map_location="cpu", weights_only=True)
    assert state["kind"] == "starpose-qat" and state["iteration"] == 3
    assert state["float_depthwise"] is True
    from quantization import with_int8_depthwise

    with pytest.raises(ValueError, match="trained with float depthwise"):  # export must match training
        load_qat(qat.checkpoint, qat_artifacts["deploy"], scheme=with_int8_depthwise(SCHEMES["int8-qat"]))
    moved = [k for k, v in qat.float_network.state_dict().items()
             if k in qat_artifacts["initial"] and v.shape == qat_artifacts["initial"][k].shape
             and not torch.equal(v, qat_artifacts["initial"][k])]
    assert len(moved) > 10  # training changed the weights
    reloaded, extra = load_qat(qat.checkpoint, qat_artifacts["deploy"])
    assert extra["source_weights_sha256"] == qat_artifacts["info"].sha256
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        for a, b in zip(qat.quantized(x), reloaded.quantized(x)):
            assert torch.equal(a, b)
    import quantization.schemes

    with monkeypatch.context() as m:  # a version that quantized the attention's key-value summary
        m.setattr(quantization.schemes, "_is_attention_summary", lambda node: False)
        with pytest.raises(ValueError, match="different choice of int8 ops.*run `starpose-mobile qat` again"):
            load_qat(qat.checkpoint, qat_artifacts["deploy"])
    with pytest.raises(ValueError, match="not a StarPose QAT checkpoint"):
        bogus = qat_artifacts["out"] / "bogus.pt"
        torch.save({"model": {}, "epoch": 1}, bogus)
        load_qat(bogus, qat_artifacts["deploy"])


def test_int8_pte_runs_in_executorch(qat_artifacts):
    from mobile_export.executorch import delegate_ids, inspect, open_runner

    path = qat_artifacts["paths"][".pte"]
    meta = read_metadata_file(sidecar_path(path))
    assert meta["precision"] == "int8" and meta["quantization"]["scheme"] == "int8-qat"
    assert meta["quantization"]["qat_checkpoint"] == "qat_last.pt"
    assert "XnnpackBackend" in delegate_ids(path)
    assert compare_io(inspect(path), expected_io(meta)) == []
    assert path.stat().st_size < 0.5 * _bytes_of(qat_artifacts["qat"].float_network)  # int8 weights
    runner = open_runner(path, meta)
    bundle = PoseBundle(qat_artifacts["qat"].quantized, SMALL, layout="NHWC", raw=True)
    for crop in qat_artifacts["crops"]:
        out = runner(crop.image)
        assert out["keypoints"].shape == (1, 17, 2) and out["simcc_x"].shape == (1, 17, 192)
        with torch.no_grad():
            ref = bundle(torch.from_numpy(crop.image[None]))
        sx = ref[2].numpy()
        # XNNPACK's int8 kernels against PyTorch's reference quantize/dequantize arithmetic:
        # rounding differences only, far below the SimCC values' spread.
        assert np.abs(out["simcc_x"] - sx).max() < 0.05 * (sx.max() - sx.min()) + 1e-3
        np.testing.assert_allclose(out["scores"], np.minimum(out["simcc_x"].max(-1), out["simcc_y"].max(-1)), atol=1e-6)


def test_int8_tflite_runs_in_litert(qat_artifacts):
    import ai_edge_litert  # noqa: F401
    from mobile_export.detector import delegation_report
    from mobile_export.tflite import open_runner, read_embedded_metadata

    path = qat_artifacts["paths"][".tflite"]
    meta = read_metadata_file(sidecar_path(path))
    assert read_embedded_metadata(path) == meta
    assert meta["precision"] == "int8" and meta["quantization"]["quantizer"] == "litert_torch PT2EQuantizer"
    runner = open_runner(path, meta)
    assert compare_io(runner.observed_io(), expected_io(meta)) == []
    details = runner.interpreter.get_tensor_details()
    assert sum(1 for d in details if d["dtype"] == np.int8) > 20  # the network computes in int8
    # the float islands (attention summary, normalizer, head) stay in the delegate: no batch-1
    # FULLY_CONNECTED with an activation as its weight, no input CAST, on the builtin kernels
    outside = delegation_report(path, "tflite")["outside"]
    assert "FULLY_CONNECTED" not in outside and outside.count("CAST") <= 1, outside
    twin = qat_artifacts["qat"].float_network
    for crop in qat_artifacts["crops"]:
        out = runner(crop.image)
        with torch.no_grad():
            ref = PoseBundle(twin, SMALL, layout="NHWC", raw=True)(torch.from_numpy(crop.image[None]))
        sx = ref[2].numpy()
        assert np.abs(out["simcc_x"] - sx).max() < 0.25 * (sx.max() - sx.min())  # int8 vs float weights
    assert path.stat().st_size < 0.5 * _bytes_of(twin)


def test_coreml_int8_spec_has_quantized_weights(qat_artifacts):
    import coremltools  # noqa: F401
    from mobile_export.coreml import inspect, read_embedded_metadata
    from quantization.coreml import WEIGHT_THRESHOLD, compressed_op_counts, float_consts

    path = qat_artifacts["paths"][".mlpackage"]
    meta = read_embedded_metadata(path)
    assert meta == read_metadata_file(sidecar_path(path))
    assert meta["precision"] == "int8" and meta["quantization"]["weights"].startswith("int8")
    counts = compressed_op_counts(path)
    assert counts["constexpr_affine_dequantize"] > 20
    left = [(name, n) for name, n in float_consts(path) if n > WEIGHT_THRESHOLD]
    assert left == []  # every weight above coremltools' threshold is stored as int8
    assert compare_io(inspect(path), expected_io(meta)) == []
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < 0.75 * _bytes_of(qat_artifacts["qat"].float_network) / 2  # well below fp16 weights


def test_coreml_palettized_weights(tmp_path):
    import coremltools  # noqa: F401
    import sklearn  # noqa: F401
    from mobile_export.coreml import read_embedded_metadata
    from quantization.coreml import WEIGHT_THRESHOLD, compressed_op_counts, float_consts

    model = small_model(2)
    info = WeightsInfo("starpose_test-seed2", state_dict_sha256(model.state_dict()), "random", 2)
    paths = export_quantized(QuantizedExport(reparameterize_model(model), info, SCHEMES["w4-palettized"], tmp_path),
                             ["coreml"])
    package = next(p for p in paths if p.suffix == ".mlpackage")
    assert compressed_op_counts(package)["constexpr_lut_to_dense"] > 20
    assert [n for _, n in float_consts(package) if n > WEIGHT_THRESHOLD] == []
    meta = read_embedded_metadata(package)
    assert meta["precision"] == "fp16" and "palettization" in meta["quantization"]["weights"]


def test_report_row_and_markdown_from_the_int8_pte(qat_artifacts):
    """A report row measured in the real runtime: AP on the fixture people, parity with the fp32
    model overall and on its most confident keypoints, and the markdown that shows both."""
    import json

    from quantization.report import QuantizationReport, measure_artifact

    row = measure_artifact(qat_artifacts["paths"][".pte"], "int8-qat", qat_artifacts["model"],
                           resolve_coco_source(shared(COCO_JSON)))
    p = row.parity
    assert (p.n_crops, p.n_keypoints) == (14, 14 * 17) and row.precision == "int8"
    from quantization.report import GATES

    assert row.gate_failures == GATES.check(p)  # int8 rows are gated, with the report's own parity
    assert set(row.metrics) == set(_STATS)  # AP itself: test_artifact_ap_scores_perfect_keypoints_one
    half, quarter = p.by_reference_score
    assert (half["fraction"], quarter["fraction"]) == (0.5, 0.25)
    assert half["share"] >= 0.5 and quarter["share"] >= 0.25 and quarter["min_score"] >= half["min_score"]
    assert all(np.isfinite(b["mean_kpt_px"]) and 0.0 <= b["pck_agreement"] <= 1.0 for b in (half, quarter))
    report = QuantizationReport("starpose_test", qat_artifacts["info"].to_dict(), str(shared(COCO_JSON)), [row])
    md = report.markdown()
    assert "| int8-qat | starpose" in md and "surest of" in md and "top 25%" in md
    assert "top 50% by fp32 score" in p.table()
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["rows"][0]["parity"]["by_reference_score"][1]["fraction"] == 0.25
    assert doc["qat_vs_ptq"] == {}  # no PTQ row to compare with

    import dataclasses

    ap = row.metrics["AP"]
    for ptq_ap, verdict in ((ap + 0.01, "BELOW PTQ's"), (ap, "at least PTQ's")):
        ptq = dataclasses.replace(row, label="int8-ptq", metrics={**row.metrics, "AP": ptq_ap})
        both = QuantizationReport("starpose_test", qat_artifacts["info"].to_dict(), str(shared(COCO_JSON)), [ptq, row])
        (fmt, cmp), = both.qat_vs_ptq().items()
        assert fmt == "executorch" and cmp["qat_ap_at_least_ptq"] is (verdict == "at least PTQ's")
        assert f"QAT AP {ap:.3f} vs PTQ {ptq_ap:.3f}: {verdict}" in both.markdown()


def test_manifest_records_the_int8_artifacts(qat_artifacts):
    out = qat_artifacts["out"]
    manifest = read_manifest(out)
    models = {n: e for n, e in manifest["artifacts"].items() if e.get("role") == "model"}
    assert sorted(models) == sorted(p.name for p in qat_artifacts["paths"].values())
    for name, entry in models.items():
        assert entry["precision"] == "int8" and entry["scheme"] == "int8-qat"
        assert check_entry(out, name, entry) == []
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]  # staged files all renamed
    # no path of the building machine inside an artifact's metadata (e.g. the calibration file)
    def strings(v):
        if isinstance(v, dict):
            return [s for x in v.values() for s in strings(x)]
        if isinstance(v, list):
            return [s for x in v for s in strings(x)]
        return [v] if isinstance(v, str) else []

    for name in models:
        meta = read_metadata_file(sidecar_path(out / name))
        found = [s for s in strings(meta) if str(shared(COCO_JSON).parent) in s or s.startswith(str(out))]
        assert not found, (name, found)


def test_dynamic_range_tflite(tmp_path):
    import ai_edge_litert  # noqa: F401
    from mobile_export.tflite import open_runner

    model = small_model(1)
    deploy = reparameterize_model(model)
    info = WeightsInfo("starpose_test-seed1", state_dict_sha256(model.state_dict()), "random", 1)
    (path, side) = export_quantized(QuantizedExport(deploy, info, SCHEMES["int8-dynamic"], tmp_path), ["tflite"])
    meta = read_metadata_file(side)
    assert "dynamic" in meta["quantization"]["activations"]
    runner = open_runner(path, meta)
    crop = coco_crops(shared(COCO_JSON), SMALL)[0]
    out = runner(crop.image)
    with torch.no_grad():
        ref = PoseBundle(deploy, SMALL, layout="NHWC")(torch.from_numpy(crop.image[None]))
    assert np.abs(out["scores"] - ref[1].numpy()).max() < 0.1 * float(ref[1].abs().max()) + 1e-3
    with pytest.raises(ValueError, match="no quantized executorch path"):
        export_quantized(QuantizedExport(deploy, info, SCHEMES["int8-dynamic"], tmp_path), ["executorch"])


def test_cli_qat_and_int8_export_reject_bad_input(tmp_path):
    from starpose.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["qat", "--data", str(tmp_path), "--weights", "random", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "expected one COCO keypoints json" in result.output
    result = runner.invoke(main, ["qat", "--data", str(shared(COCO_JSON)), "--formats", "onnx", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "unknown format" in result.output
    result = runner.invoke(main, ["qat", "--data", str(shared(COCO_JSON)), "--val-images", str(tmp_path), "--out",
                                  str(tmp_path / "o")])
    assert result.exit_code != 0 and "--val-images needs --val-data" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--int8-depthwise", "--weights", "random",
                                  "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "--int8-depthwise is for --precision int8" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--precision", "int8", "--scheme", "qat",
                                  "--weights", "random", "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "--qat-checkpoint" in result.output
    result = runner.invoke(main, ["export", "--format", "torchscript", "--precision", "int8", "--weights", "random",
                                  "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "no quantized torchscript path" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--precision", "int8", "--calib-limit", "0",
                                  "--weights", "random", "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "--calib-limit" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--calib-limit", "10", "--weights", "random",
                                  "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "are for --precision int8" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--int8-float", "backbone.layers.3",
                                  "--weights", "random", "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "--int8-float is for --precision int8" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--precision", "int8", "--scheme", "qat",
                                  "--int8-float", "backbone.layers.3", "--weights", "random", "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "--int8-float is for --scheme ptq or dynamic" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--precision", "int8", "--int8-float",
                                  "backbone.layer.3", "--weights", "random", "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "no module 'backbone.layer.3'" in result.output
    result = runner.invoke(main, ["qat", "--data", str(shared(COCO_JSON)), "--calib-limit", "-3", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "--calib-limit" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--precision", "int8", "--calib-images",
                                  str(tmp_path), "--weights", "random", "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "--calib-images needs --calib-data" in result.output
    result = runner.invoke(main, ["export", "--format", "executorch", "--calib-data", str(shared(COCO_JSON)),
                                  "--calib-images", str(tmp_path), "--weights", "random", "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "are for --precision int8" in result.output
    # --calib-images is where the json's file_names are looked up: an empty folder names the missing photo
    result = runner.invoke(main, ["export", "--format", "executorch", "--precision", "int8", "--calib-data",
                                  str(shared(COCO_JSON)), "--calib-images", str(tmp_path), "--weights", "random",
                                  "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and str(tmp_path) in result.output and "not found" in result.output
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())


_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


@pytest.mark.parametrize("affine", [False, True])
def test_artifact_ap_scores_perfect_keypoints_one(affine):
    """The report's AP glue (crop → runner → image coordinates → results → COCOeval) on a runner
    that answers each crop with that person's labelled keypoints, computed here from the label
    and the box alone: AP 1.0; the same answers 6 crop pixels off: lower. (The int8 row above runs
    random weights, whose AP is 0 whatever the glue does.)"""
    import json

    from quantization.report import artifact_ap
    from starpose.processing import apply_affine, bbox_xywh_to_cs, get_warp_matrix
    from starpose.spec import COCO_SPEC

    ann_file = shared(COCO_JSON)
    doc = json.loads(ann_file.read_text())
    size = {im["id"]: (im["width"], im["height"]) for im in doc["images"]}
    people = []
    for ann in doc["annotations"]:
        kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        if ann.get("iscrowd") or not (kp[:, 2] > 0).any():
            continue
        (iw, ih), (x, y, w, h) = size[ann["image_id"]], ann["bbox"]  # the loader clips boxes to the image
        x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, iw - 1.0), min(y + h, ih - 1.0)
        center, scale = bbox_xywh_to_cs(np.array([x1, y1, x2 - x1, y2 - y1]), COCO_SPEC.input_size, COCO_SPEC.bbox_padding)
        people.append((kp[:, :2], apply_affine(kp[:, :2], get_warp_matrix(center, scale, 0.0, COCO_SPEC.input_size))))

    def ap(shift: float) -> float:
        answers = iter(people)

        def runner(crop, crop_to_image):
            assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8 and (crop_to_image is not None) == affine
            image_kp, crop_kp = next(answers)
            kp = image_kp + shift * np.asarray(crop_to_image)[:, 0] if affine else crop_kp + shift
            return {"keypoints": kp.astype(np.float32), "scores": np.ones(len(kp), np.float32)}

        metrics = artifact_ap(runner, resolve_coco_source(ann_file), COCO_SPEC, affine=affine)["metrics"]
        assert next(answers, None) is None  # one call per labelled person
        return metrics["AP"]

    assert ap(0.0) == pytest.approx(1.0)
    assert ap(6.0) < 0.9
