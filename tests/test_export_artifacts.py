"""Exported artifacts in their real runtimes: parity on real person crops, Core ML spec checks,
manifest integrity, corruption, mismatched metadata, bad input, the CLI.

One seeded starpose_t is exported once per session in every format (ExecuTorch XNNPACK and
Core ML delegates, Core ML .mlpackage, TFLite, TorchScript .pt/.ptl, ONNX), three to four
minutes on two busy cores; every test below reads that directory or a copy of it.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import executorch.exir  # noqa: F401  (an extra the test command installs: a broken install fails here)
import coremltools  # noqa: F401  (an extra the test command installs: a broken install fails here)
import litert_torch  # noqa: F401  (an extra the test command installs: a broken install fails here)
import onnxruntime  # noqa: F401  (an extra the test command installs: a broken install fails here)

from click.testing import CliRunner  # noqa: E402

from mobile_export import coreml, executorch, torchscript  # noqa: E402
from mobile_export.base import ArtifactLoadError, ExportOptions, MissingExtraError, RuntimeUnavailable  # noqa: E402
from mobile_export.export import export_formats, formats_for  # noqa: E402
from mobile_export.formats import FORMATS  # noqa: E402
from mobile_export.manifest import file_sha256, read_manifest, update_manifest  # noqa: E402
from mobile_export.metadata import build_metadata, dumps, read_metadata_file, sidecar_path  # noqa: E402
from mobile_export.parity import coco_crops  # noqa: E402
from mobile_export.source import deploy_network, resolve_model  # noqa: E402
from mobile_export.verify import compare_io, expected_io, verify  # noqa: E402
from starpose.cli import main  # noqa: E402
from starpose.spec import CROWDPOSE_SPEC  # noqa: E402

from conftest import COCO_JSON, shared  # noqa: E402

TESTS = Path(__file__).resolve().parent
RUNNABLE = ["starpose_t_xnnpack_fp32.pte", "starpose_t_fp32.tflite", "starpose_t_fp32.pt", "starpose_t_fp32.ptl",
            "starpose_t_fp32.onnx"]
ALL = RUNNABLE + ["starpose_t_coreml_fp32.pte", "starpose_t_fp32.mlpackage"]


@pytest.fixture(scope="session")
def report(export_dir):
    return verify(export_dir)


@pytest.fixture()
def copy_dir(export_dir, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(export_dir, dst)
    return dst


def _result(report, name):
    (r,) = [r for r in report.results if r.name == name]
    return r


def test_export_writes_every_artifact_and_verifies(export_dir, report):
    names = sorted(p.name for p in export_dir.iterdir())
    assert names == sorted(ALL + [sidecar_path(Path(n)).name for n in ALL] + ["manifest.json"])
    assert sorted(r.name for r in report.results) == sorted(ALL)
    assert report.ok, report.render()


@pytest.mark.parametrize("name", RUNNABLE)
def test_fp32_parity_in_real_runtime(report, name):
    """ExecuTorch, LiteRT, PyTorch(-Lite) and ONNX Runtime outputs against the eager model + numpy decode."""
    parity = _result(report, name).parity
    assert parity is not None, report.render()
    assert (parity.n_crops, parity.n_keypoints) == (14, 14 * 17)
    assert parity.precision == "fp32"
    assert parity.mean_kpt_px <= 0.5 and parity.mean_kpt_px < 0.01  # limit, and what float32 actually gives
    assert parity.argmax_agreement >= 0.99
    assert parity.pck_agreement == 1.0
    assert parity.score_max_abs < 1e-4
    assert parity.raw_max_abs is None  # default artifacts expose no SimCC vectors
    assert parity.passed and not parity.failures


def test_manifest_lists_everything_with_hashes(export_dir):
    doc = read_manifest(export_dir)
    arts = doc["artifacts"]
    assert set(arts) == {n for n in ALL} | {sidecar_path(Path(n)).name for n in ALL}
    for name in ALL:
        e = arts[name]
        assert e["role"] == "model" and e["metadata"] == name + ".json"
        if e["kind"] == "file":
            assert e["sha256"] == file_sha256(export_dir / name)
            assert e["size"] == (export_dir / name).stat().st_size
        else:
            assert name.endswith(".mlpackage") and e["files"]
    assert arts["starpose_t_fp32.tflite"]["format"] == "tflite"
    assert arts["starpose_t_coreml_fp32.pte"]["backend"] == "coreml"


@pytest.mark.parametrize("name", ALL)
def test_embedded_metadata_equals_sidecar(export_dir, seeded, name):
    exporter = FORMATS[read_metadata_file(sidecar_path(export_dir / name))["format"]]
    embedded = exporter.read_embedded_metadata(export_dir / name)
    sidecar = read_metadata_file(sidecar_path(export_dir / name))
    assert embedded == sidecar
    assert sidecar["model"]["weights_sha256"] == seeded[1].sha256
    assert sidecar["model"]["weights_source"] == "random"


def test_layouts_follow_the_platform_image_apis(export_dir):
    layouts = {n: read_metadata_file(sidecar_path(export_dir / n))["input"] for n in ALL}
    for n in RUNNABLE + ["starpose_t_coreml_fp32.pte"]:
        assert (layouts[n]["layout"], layouts[n]["dtype"], layouts[n]["type"]) == ("NHWC", "uint8", "tensor")
    assert (layouts["starpose_t_fp32.mlpackage"]["layout"], layouts["starpose_t_fp32.mlpackage"]["type"]) == ("NCHW", "image")


# ----------------------------------------------------------------------------- Core ML


def test_coreml_spec_on_linux(export_dir):
    import coremltools as ct

    path = export_dir / "starpose_t_fp32.mlpackage"
    spec = ct.utils.load_spec(str(path))
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.specificationVersion == 7  # iOS 16 / macOS 13, the chosen minimum deployment target
    (inp,) = spec.description.input
    assert inp.name == "image" and inp.type.WhichOneof("Type") == "imageType"
    assert (inp.type.imageType.width, inp.type.imageType.height) == (192, 256)
    assert coreml.image_color_space(path) == "RGB"
    outs = {o.name: tuple(o.type.multiArrayType.shape) for o in spec.description.output}
    assert outs == {"keypoints": (1, 17, 2), "scores": (1, 17)}
    md = spec.description.metadata
    assert md.author == "StarPose Mobile" and md.license == "Apache-2.0"
    assert md.versionString == "0.1.0" and "17 keypoints" in md.shortDescription
    assert json.loads(md.userDefined["starpose.metadata"]) == read_metadata_file(sidecar_path(path))
    assert md.userDefined["starpose.keypoint_names"].split(",")[0] == "nose"
    assert md.userDefined["com.github.apple.coremltools.source_dialect"] == "TorchExport::ATEN"  # torch.export frontend


def test_coreml_fp16_keeps_decoding_in_fp32(tmp_path, seeded):
    """fp16 compute, but the ops after the argmax (decode + crop→image affine) stay float32."""
    import coremltools as ct

    model, info = seeded
    (path, _) = coreml.export_coreml(deploy_network(model), tmp_path,
                                     ExportOptions(precision="fp16", weights=info, affine=True))
    spec = ct.utils.load_spec(str(path))
    assert [i.name for i in spec.description.input] == ["image", "crop_to_image"]
    ops = [op for block in spec.mlProgram.functions["main"].block_specializations.values() for op in block.operations]
    dtypes: dict[str, set[int]] = {}
    keypoint_path: set[int] = set()
    for op in ops:
        for out in op.outputs:
            t = out.type.tensorType
            dtypes.setdefault(op.type, set()).add(t.dataType)
            if [d.constant.size for d in t.dimensions] == [1, 17, 2]:  # argmax indices → keypoints
                keypoint_path.add(t.dataType)
    assert ct.proto.MIL_pb2.FLOAT32 in keypoint_path and ct.proto.MIL_pb2.FLOAT16 not in keypoint_path
    assert ct.proto.MIL_pb2.FLOAT16 in dtypes["conv"]  # the network itself does run in fp16
    meta = read_metadata_file(sidecar_path(path))
    assert meta["precision"] == "fp16" and meta["outputs"]["keypoints"]["units"] == "image pixels"
    assert compare_io(coreml.inspect(path), expected_io(meta)) == []


@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML predict() needs Apple's Core ML framework: macOS only")
def test_coreml_predict_parity_on_macos(report):
    parity = _result(report, "starpose_t_fp32.mlpackage").parity
    assert parity is not None and parity.passed, report.render()


def test_coreml_on_linux_is_reported_as_skipped_not_passed(report):
    if sys.platform == "darwin":
        pytest.skip("on macOS Core ML runs; covered by test_coreml_predict_parity_on_macos")
    r = _result(report, "starpose_t_fp32.mlpackage")
    (run,) = [c for c in r.checks if c.name == "run"]
    assert run.ok is None and "macOS" in run.detail and r.parity is None
    assert r.status == "SKIP" and "starpose_t_fp32.mlpackage [coreml] — SKIP" in report.render()
    assert "not run here" in report.render().splitlines()[-1]


def test_executorch_coreml_pte_contains_the_delegate(export_dir):
    from executorch.runtime import Runtime

    path = export_dir / "starpose_t_coreml_fp32.pte"
    assert set(executorch.delegate_ids(path)) == {"CoreMLBackend"}
    assert set(executorch.delegate_ids(export_dir / "starpose_t_xnnpack_fp32.pte")) == {"XnnpackBackend"}
    meta = read_metadata_file(sidecar_path(path))
    assert "CoreMLBackend is not registered" in meta["runtime"]["notes"]
    assert meta["runtime"]["minimum_deployment_target"] == "iOS16"
    assert compare_io(executorch.inspect(path), expected_io(meta)) == []
    if Runtime.get().backend_registry.is_available("CoreMLBackend"):
        pytest.skip("this ExecuTorch runtime has CoreMLBackend (Apple build): it runs there")
    with pytest.raises(RuntimeUnavailable, match="CoreMLBackend is not registered"):
        executorch.open_runner(path, meta)
    with pytest.raises(RuntimeError):  # what the real runtime says on Linux: Backend ... is not registered
        Runtime.get().load_program(path).load_method("forward")


# ----------------------------------------------------------------------------- integrity


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["starpose_t_xnnpack_fp32.pte", "starpose_t_fp32.tflite", "starpose_t_fp32.ptl",
                                  "starpose_t_fp32.onnx"])
def test_one_corrupted_byte_fails_verify(copy_dir, name):
    path = copy_dir / name
    _flip_byte(path, path.stat().st_size // 2)
    rep = verify(path)
    assert not rep.ok
    (integrity,) = [c for c in rep.results[0].checks if c.name == "integrity"]
    assert integrity.ok is False and "sha256" in integrity.detail and name in integrity.detail
    assert rep.results[0].checks[-1].detail.startswith("not loaded")  # never handed to the runtime


def test_corrupted_mlpackage_file_fails_verify(copy_dir):
    weights = next((copy_dir / "starpose_t_fp32.mlpackage").rglob("weight.bin"))
    _flip_byte(weights, weights.stat().st_size // 3)
    rep = verify(copy_dir / "starpose_t_fp32.mlpackage")
    assert not rep.ok and "weight.bin" in rep.render() and "sha256" in rep.render()


@pytest.mark.parametrize("name,offset", [("starpose_t_xnnpack_fp32.pte", 5), ("starpose_t_fp32.tflite", 5)])
def test_corrupted_header_without_manifest_is_a_load_error(copy_dir, name, offset):
    (copy_dir / "manifest.json").unlink()
    _flip_byte(copy_dir / name, offset)  # inside the file identifier ("ET12" / "TFL3")
    rep = verify(copy_dir / name)  # refused with a message, not a crashed process
    assert not rep.ok
    text = rep.render()
    assert name in text and ("not an ExecuTorch program" in text or "TFL3" in text), text


def test_metadata_that_disagrees_with_the_artifact(copy_dir, seeded):
    """The sidecar claims 14 keypoints; the .pte outputs 17 (its embedded copy says 17)."""
    _, info = seeded
    path = copy_dir / "starpose_t_xnnpack_fp32.pte"
    meta14 = build_metadata(CROWDPOSE_SPEC, variant="starpose_t", weights=info, fmt="executorch", precision="fp32",
                            backend="xnnpack", layout="NHWC", affine=False, raw=False)
    sidecar_path(path).write_text(dumps(meta14))
    update_manifest(copy_dir, {sidecar_path(path).name: {"role": "metadata"}})  # integrity alone would pass
    rep = verify(path)
    assert not rep.ok
    (m,) = [c for c in rep.results[0].checks if c.name == "metadata"]
    assert m.ok is False and "differs from the embedded metadata" in m.detail and "spec" in m.detail
    problems = compare_io(executorch.inspect(path), expected_io(meta14))
    assert any("keypoints" in p and "[1, 17, 2]" in p and "[1, 14, 2]" in p for p in problems), problems


def test_artifact_whose_only_metadata_is_wrong(copy_dir, seeded):
    """Embedded and sidecar agree — and both say 14 keypoints for a 17-keypoint TorchScript model."""
    _, info = seeded
    path = copy_dir / "starpose_t_fp32.pt"
    meta14 = build_metadata(CROWDPOSE_SPEC, variant="starpose_t", weights=info, fmt="torchscript", precision="fp32",
                            backend="torchscript", layout="NHWC", affine=False, raw=False)
    module = torch.jit.load(str(path))
    torch.jit.save(module, str(path), _extra_files={"metadata.json": dumps(meta14)})
    sidecar_path(path).write_text(dumps(meta14))
    update_manifest(copy_dir, {path.name: {"role": "model"}, sidecar_path(path).name: {"role": "metadata"}})
    rep = verify(path)
    assert not rep.ok
    (io,) = [c for c in rep.results[0].checks if c.name == "inputs/outputs"]
    assert io.ok is False and "[1, 17, 2]" in io.detail and "[1, 14, 2]" in io.detail, rep.render()
    assert rep.results[0].parity is None  # parity is not measured against a misdescribed artifact


def test_tflite_input_enters_the_xnnpack_delegate(export_dir):
    """The uint8 input's cast is a DEQUANTIZE (scale 1, zero point 0) that the delegate takes:
    what LiteRT's builtin kernels still run is the SimCC decode after the network, and only that
    (its one CAST is the argmax index's, not the input's)."""
    from ai_edge_litert.interpreter import Interpreter

    from mobile_export.detector import delegation_report

    path = export_dir / "starpose_t_fp32.tflite"
    decode = ["ARG_MAX", "ARG_MAX", "RESHAPE", "RESHAPE", "CONCATENATION", "CAST", "LESS_EQUAL", "RESHAPE",
              "SELECT_V2"]
    assert delegation_report(path, "tflite")["outside"] == decode
    (inp,) = Interpreter(model_path=str(path)).get_input_details()
    assert inp["dtype"] == np.uint8 and inp["quantization"] == (1.0, 0)


def test_uint8_input_as_dequantize_is_exact_and_delegated(tmp_path):
    """The rewrite on a converted model whose uint8 input is cast, normalized and convolved: the
    CAST (outside the delegate) becomes a delegated DEQUANTIZE and every output stays bit for bit."""
    from ai_edge_litert.interpreter import Interpreter

    from mobile_export.detector import delegation_report
    from mobile_export.tflite import uint8_input_as_dequantize

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.conv((image.to(torch.float32) - 127.5).permute(0, 3, 1, 2) / 58.0)

    torch.manual_seed(0)
    x = torch.randint(0, 256, (1, 16, 12, 3), dtype=torch.uint8)
    before = bytes(litert_torch.convert(Net().eval(), (x,)).model_content())
    after = uint8_input_as_dequantize(before)
    (tmp_path / "before.tflite").write_bytes(before)
    (tmp_path / "after.tflite").write_bytes(after)
    assert delegation_report(tmp_path / "before.tflite", "tflite")["outside"] == ["CAST"]
    assert delegation_report(tmp_path / "after.tflite", "tflite") == {"delegate_calls": 1, "outside": []}
    outs = []
    for name in ("before.tflite", "after.tflite"):
        it = Interpreter(model_path=str(tmp_path / name))
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x.numpy())
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert uint8_input_as_dequantize(after) == after  # nothing left to rewrite


def test_bad_input_is_refused_clearly(export_dir, tmp_path):
    path = export_dir / "starpose_t_fp32.tflite"
    meta = read_metadata_file(sidecar_path(path))
    runner = FORMATS["tflite"].open_runner(path, meta)
    with pytest.raises(ValueError, match=r"uint8 RGB crop of shape \(256, 192, 3\)"):
        runner(np.zeros((192, 256, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        runner(np.zeros((256, 192, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="no such artifact"):
        verify(tmp_path / "nothing.pte")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not an artifact of a known format"):
        verify(tmp_path / "notes.txt")
    junk = tmp_path / "junk.pte"
    junk.write_bytes(b"\x00" * 64)
    rep = verify(junk)
    assert not rep.ok and "junk.pte" in rep.render()
    with pytest.raises(ArtifactLoadError, match="junk.pte"):
        executorch.inspect(junk)
    with pytest.raises(ValueError, match="offers fp32, not fp16"):
        formats_for("torchscript", "fp16")
    with pytest.raises(ValueError, match="fp32 only"):
        torchscript.export_torchscript(torch.nn.Identity(), tmp_path, ExportOptions(precision="fp16"))


# ----------------------------------------------------------------------------- options, failures, CLI


def test_raw_and_affine_outputs_in_lite_interpreter(tmp_path, seeded):
    model, info = seeded
    paths = torchscript.export_torchscript(deploy_network(model), tmp_path,
                                           ExportOptions(weights=info, affine=True, raw=True))
    ptl = next(p for p in paths if p.suffix == ".ptl")
    assert ptl.name == "starpose_t_fp32_affine_raw.ptl"
    meta = read_metadata_file(sidecar_path(ptl))
    assert list(meta["outputs"]) == ["keypoints", "scores", "simcc_x", "simcc_y"]
    assert meta["outputs"]["keypoints"]["units"] == "image pixels"
    assert meta["runtime"]["optimize_for_mobile"] == torchscript.mobile_optimizer_available()
    rep = verify(ptl)
    parity = rep.results[0].parity
    assert parity is not None and parity.passed, rep.render()
    assert parity.raw_max_abs is not None and parity.raw_max_abs < 1e-4 and parity.raw_mean_abs < 1e-5
    assert parity.mean_kpt_px < 1e-3  # image-pixel outputs mapped back into the crop
    crop = coco_crops(shared(COCO_JSON), model.spec, limit=1)[0]
    out = FORMATS["torchscript"].open_runner(ptl, meta)(crop.image, crop.crop_to_image)
    assert out["keypoints"].shape == (1, 17, 2) and out["simcc_x"].shape == (1, 17, 384)


def test_interrupted_export_leaves_no_files(tmp_path, seeded, monkeypatch):
    model, info = seeded

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt  # the user pressing Ctrl-C after the .pt was written, while the .ptl is saved
    monkeypatch.setattr(torch.jit.RecursiveScriptModule, "_save_for_lite_interpreter", interrupted)
    with pytest.raises(KeyboardInterrupt):
        torchscript.export_torchscript(deploy_network(model), tmp_path / "out", ExportOptions(weights=info))
    assert list((tmp_path / "out").iterdir()) == []


def test_missing_extra_names_the_extra(monkeypatch, tmp_path):
    broken = dataclasses.replace(FORMATS["tflite"], requires=("litert_torch_not_installed_here",))
    with pytest.raises(MissingExtraError, match=r"pip install 'starpose-mobile\[export\]'"):
        broken.check_available()
    monkeypatch.setitem(FORMATS, "tflite", broken)
    res = CliRunner().invoke(main, ["export", "--format", "tflite", "--weights", "random", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "starpose-mobile[export]" in res.output
    assert list(tmp_path.iterdir()) == []


def test_cli_choices_come_from_the_formats_table():
    from starpose.cli import export_cmd

    (fmt,) = [p for p in export_cmd.params if p.name == "fmt"]
    assert list(fmt.type.choices) == [*FORMATS, "all"]


def test_cli_default_weights_missing(monkeypatch, tmp_path):
    from starpose.models import weights

    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "no_weights")
    res = CliRunner().invoke(main, ["export", "--format", "torchscript", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0
    assert "--weights PATH" in res.output and "--weights random" in res.output
    assert not (tmp_path / "o").exists()


def test_cli_export_then_verify(tmp_path):
    out = tmp_path / "ts"
    res = CliRunner().invoke(main, ["export", "--format", "torchscript", "--weights", "random", "--seed", "7",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"  wrote {out / 'starpose_t_fp32.ptl'} (" in res.output  # progress: one line per artifact
    res = CliRunner().invoke(main, ["verify", str(out), "--json", str(tmp_path / "report.json")])
    assert res.exit_code == 0, res.output
    assert "2 artifact(s), 0 failed" in res.output and "identical argmax" in res.output
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["ok"] and {a["parity"]["mean_kpt_px"] for a in doc["artifacts"]} == {0.0}
    _flip_byte(out / "starpose_t_fp32.pt", 100)
    res = CliRunner().invoke(main, ["verify", str(out)])
    assert res.exit_code == 1 and "FAIL" in res.output and "sha256" in res.output
