"""The person detector as phone artifacts: in-graph decoding equals the numpy reference, export
(ExecuTorch XNNPACK, LiteRT, Core ML), metadata checks, delegation, verify and bench."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from mobile_export.detector import (
    DetectorBundle,
    _EXPORTERS,
    build_detector_metadata,
    delegation_report,
    detector_artifact_name,
    export_detector,
    is_detector_artifact,
    parse_detector_metadata,
)
from mobile_export.metadata import MetadataError, sidecar_path
from starpose.detect.nanodet import create_detector
from starpose.detect.processing import decode, letterbox, normalize
from starpose.detect.spec import PERSON_DETECTOR_SPEC

SPEC = PERSON_DETECTOR_SPEC


def _frame() -> np.ndarray:
    from starpose.data.topdown import read_image_rgb
    from starpose.sample_data import SAMPLES_DIR

    return read_image_rgb(SAMPLES_DIR / "astronaut.jpg")


def test_bundle_decodes_like_the_reference():
    net = create_detector()
    canvas, _ = letterbox(_frame(), SPEC)
    with torch.no_grad():
        boxes, scores = DetectorBundle(net, SPEC, "NHWC")(torch.from_numpy(canvas[None]))
        logits, box = net(torch.from_numpy(normalize(canvas, SPEC))[None])
        nchw = DetectorBundle(net, SPEC, "NCHW")(torch.from_numpy(canvas.transpose(2, 0, 1)[None].astype(np.float32)))
    ref_boxes, ref_scores = decode(logits[0].numpy(), box[0].numpy(), SPEC)
    assert boxes.shape == (1, SPEC.num_anchors, 4) and scores.shape == (1, SPEC.num_anchors)
    np.testing.assert_allclose(scores[0].numpy(), ref_scores, atol=1e-6)
    np.testing.assert_allclose(boxes[0].numpy(), ref_boxes, atol=1e-3)
    np.testing.assert_allclose(nchw[0].numpy(), boxes.numpy(), atol=1e-3)


def test_metadata_checks_name_the_fault():
    meta = build_detector_metadata(SPEC, fmt="tflite", precision="fp32", weights_sha256="0" * 64)
    assert meta["kind"] == "person_detector" and meta["outputs"]["boxes"]["shape"] == [1, 735, 4]
    bad = json.loads(json.dumps(meta))
    bad["outputs"]["scores"]["shape"] = [1, 2100]
    with pytest.raises(MetadataError, match=r"det.json: outputs.scores.shape: \[1, 2100\] does not match"):
        parse_detector_metadata(json.dumps(bad), "det.json")
    bad = json.loads(json.dumps(meta))
    bad["input"]["width"] = 320
    with pytest.raises(MetadataError, match="input.width"):
        parse_detector_metadata(json.dumps(bad), "det.json")
    with pytest.raises(MetadataError, match="kind"):
        parse_detector_metadata(json.dumps({**meta, "kind": "pose"}), "det.json")
    with pytest.raises(MetadataError, match="not valid JSON"):
        parse_detector_metadata("{", "det.json")


@pytest.fixture(scope="module")
def det_dir(tmp_path_factory):
    """The detector exported once as ExecuTorch XNNPACK and LiteRT (a few minutes on two cores)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("detector")
    export_detector(out, ("executorch", "tflite"))
    return out


def test_export_writes_artifacts_sidecars_and_manifest(det_dir):
    manifest = json.loads((det_dir / "manifest.json").read_text())["artifacts"]
    for fmt in ("executorch", "tflite"):
        name = detector_artifact_name(fmt, "fp32")
        assert manifest[name]["model_kind"] == "person_detector" and manifest[name]["role"] == "model"
        assert is_detector_artifact(det_dir / name)
        meta = json.loads(sidecar_path(det_dir / name).read_text())
        assert meta["format"] == fmt and meta["detector_spec"]["input_size"] == [160, 224]
    assert not list(det_dir.glob(".tmp-*"))


@pytest.mark.parametrize("fmt, outside", [("executorch", ["aten::_to_copy"]), ("tflite", [])])
def test_fully_delegated_but_the_executorch_input_cast(det_dir, fmt, outside):
    report = delegation_report(det_dir / detector_artifact_name(fmt, "fp32"), fmt)
    assert report["delegate_calls"] == 1 and report["outside"] == outside


def test_verify_passes_on_real_frames(det_dir):
    from mobile_export.verify import verify

    report = verify(det_dir)
    assert report.ok, report.render()
    for r in report.results:
        names = [c.name for c in r.checks]
        assert names == ["integrity", "metadata", "inputs/outputs", "delegation", "parity"], names


def test_verify_catches_damage_and_lying_metadata(det_dir, tmp_path):
    from mobile_export.manifest import update_manifest
    from mobile_export.verify import verify

    name = detector_artifact_name("tflite", "fp32")
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(det_dir / name, broken / name)
    shutil.copy(sidecar_path(det_dir / name), sidecar_path(broken / name))
    update_manifest(broken, {name: {"role": "model"}, sidecar_path(broken / name).name: {"role": "metadata"}})
    data = bytearray((broken / name).read_bytes())
    data[4:8] = b"XXXX"
    (broken / name).write_bytes(bytes(data))
    report = verify(broken)
    assert not report.ok and "integrity" in report.render()
    update_manifest(broken, {name: {"role": "model"}})  # a damaged file that the manifest vouches for
    result = verify(broken).results[0]
    assert not result.ok and any(c.name == "metadata" and c.ok is False and name in c.detail for c in result.checks)

    # an artifact whose metadata (embedded and sidecar alike) promises another input size
    liar = tmp_path / "liar"
    liar.mkdir()
    spec320 = SPEC.with_input_size(320, 320)
    meta = build_detector_metadata(spec320, fmt="tflite", precision="fp32", weights_sha256="0" * 64)
    with torch.no_grad():
        _EXPORTERS["tflite"](create_detector(), SPEC, "fp32", meta, liar / name)
    sidecar_path(liar / name).write_text(json.dumps(meta))
    update_manifest(liar, {name: {"role": "model"}, sidecar_path(liar / name).name: {"role": "metadata"}})
    result = verify(liar).results[0]
    bad = [c for c in result.checks if c.ok is False]
    assert bad and bad[0].name == "inputs/outputs" and name in bad[0].detail and "320" in bad[0].detail


def test_bench_times_detector_artifacts(det_dir):
    from mobile_export.bench import collect_targets, run_bench

    targets = collect_targets([det_dir])
    assert {t.kind for t in targets} == {"detector"} and len(targets) == 2
    report = run_bench(targets, threads=[1], runs=2, rounds=1, warmup=0)
    assert all(r.status == "ok" and len(r.times_ms) == 2 for r in report.rows), report.render()


@pytest.mark.slow
def test_coreml_detector_spec(tmp_path):
    from mobile_export.coreml import _load_spec, inspect

    (path,) = [p for p in export_detector(tmp_path, ("coreml",)) if p.suffix == ".mlpackage"]
    io = inspect(path)
    assert [o.name for o in io.outputs] == ["boxes", "scores"]
    text = dict(_load_spec(path).description.metadata.userDefined)["starpose.metadata"]
    assert json.loads(text)["kind"] == "person_detector"


@pytest.mark.slow
def test_export_detector_input_option_sets_the_artifact_input(tmp_path):
    """``export --detector-input 192x256`` (h x w): a landscape detector whose metadata, outputs and
    parity agree (the default is an upright 224x160 phone frame)."""
    from click.testing import CliRunner

    from starpose.cli import main

    out = tmp_path / "landscape"
    r = CliRunner().invoke(main, ["export", "--format", "tflite", "--weights", "random", "--detector-input", "192x256",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "person detector (192x256 input, h x w)" in r.output
    name = detector_artifact_name("tflite", "fp32")
    meta = json.loads(sidecar_path(out / name).read_text())
    assert meta["detector_spec"]["input_size"] == [256, 192] and (meta["input"]["width"], meta["input"]["height"]) == (256, 192)
    assert meta["outputs"]["scores"]["shape"] == [1, SPEC.with_input_size(256, 192).num_anchors]
    from mobile_export.verify import verify

    report = verify(out)
    assert report.ok, report.render()
    det = [r for r in report.results if r.name == name]
    assert det and [c.name for c in det[0].checks] == ["integrity", "metadata", "inputs/outputs", "delegation", "parity"]
