"""Options that would do nothing in the combination given are refused with a usage error that says
when they apply (never accepted and silently ignored), and ``verify`` does not call an artifact it
could not run PASS."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from mobile_export.verify import ArtifactResult
from starpose.cli import main


@pytest.mark.parametrize("args, says", [
    (["export", "--format", "torchscript", "--scheme", "qat", "--qat-checkpoint", "{ckpt}"],
     "--scheme and --qat-checkpoint are for --precision int8"),
    (["export", "--format", "torchscript", "--scheme", "dynamic"], "--scheme and --qat-checkpoint are for --precision int8"),
    (["export", "--format", "tflite", "--precision", "int8", "--qat-checkpoint", "{ckpt}"],
     "--qat-checkpoint is for --precision int8 --scheme qat, not --scheme ptq"),
    (["export", "--format", "torchscript", "--seed", "3"], "--seed is for --weights random"),
    (["eval", "--boxes", "gt", "--det-file", "{ckpt}"], "--det-file is for --boxes det (here --boxes gt)"),
    (["eval", "--boxes", "ours", "--det-file", "{ckpt}"], "--det-file is for --boxes det (here --boxes ours)"),
    (["eval", "--dataset", "mpii", "--boxes", "det"], "--boxes det is for --dataset coco or crowdpose"),
    (["eval", "--dataset", "mpii", "--boxes", "ours"], "--boxes ours is for --dataset coco or crowdpose"),
    (["eval", "--dataset", "coco", "--gt-mat", "{ckpt}"], "--gt-mat is for --dataset mpii"),
    (["export", "--format", "tflite", "--no-detector", "--detector-input", "192x256"],
     "--detector-input is for exports with the detector"),
    (["export", "--format", "tflite", "--precision", "int8", "--detector-input", "192x256"],
     "--detector-input is for exports with the detector"),
    (["export", "--format", "tflite", "--detector-input", "250x192"], "each side must be a multiple of 32"),
    (["export", "--format", "tflite", "--detector-input", "tall"], "expected HEIGHTxWIDTH"),
    (["eval", "--boxes", "gt", "--detector-input", "256x192"], "--detector-input is for --boxes ours"),
    (["eval", "--boxes", "ours", "--detector-input", "256x190"], "each side must be a multiple of 32"),
    (["predict", "--sample", "--no-detector", "--detector-input", "256x192"],
     "--detector-input is for the bundled detector (not with --det or --no-detector)"),
    (["predict", "--sample", "--det", "{ckpt}", "--detector-input", "256x192"],
     "--detector-input is for the bundled detector (not with --det or --no-detector)"),
    (["predict", "--sample", "--detector-input", "wide"], "expected HEIGHTxWIDTH"),
])
def test_ignored_option_is_a_usage_error(tmp_path, args, says):
    ckpt = tmp_path / "bogus.pt"
    ckpt.write_bytes(b"not a checkpoint")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, [a.replace("{ckpt}", str(ckpt)) for a in args] + (["--out", str(out)] if args[0] == "export" else []))
    assert r.exit_code == 2, r.output  # click's usage-error status, before any work
    assert says in r.output
    assert not out.exists()


@pytest.mark.parametrize("args, says", [
    (["predict", "--sample", "--detector-input", "100000x100000"],
     "Invalid value for --detector-input: 100000x100000: each side must be a multiple of 32 from 32 to 2048"),
    (["eval", "--input-size", "3x3"], "Invalid value for --input-size: 3x3: each side must be a multiple of 32"),
    (["eval", "--dataset", "lsp", "--input-size", "250x192"], "Invalid value for --input-size: 250x192"),
    (["train", "--input-size", "0x192"], "Invalid value for --input-size: 0x192"),
    (["predict", "--sample", "--kpt-thr", "nan"], "Invalid value for --kpt-thr: nan is not a finite number"),
    (["train", "--epochs", "0"], "Invalid value for '--epochs': 0 is not in the range x>=1"),
    (["train", "--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range x>=1"),
    (["train", "--lr", "-1"], "Invalid value for --lr: -1.0 is not above 0"),
    (["train", "--lr", "inf"], "Invalid value for --lr: inf is not a finite number"),
    (["train", "--ema", "1"], "Invalid value for '--ema': 1.0 is not in the range 0<=x<1"),
    (["train", "--ema", "nan"], "Invalid value for --ema: nan is not a finite number"),
    (["train", "--weight-decay", "-0.1"], "Invalid value for '--weight-decay'"),
    (["train", "--workers", "-1"], "Invalid value for '--workers'"),
    (["train", "--seed", "-5"], "Invalid value for '--seed': -5 is not in the range x>=0"),
    (["eval", "--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range x>=1"),
    (["qat", "--data", "{data}", "--max-steps", "0"], "Invalid value for '--max-steps': 0 is not in the range x>=1"),
    (["qat", "--data", "{data}", "--epochs", "0"], "Invalid value for '--epochs': 0 is not in the range x>=1"),
    (["qat", "--data", "{data}", "--lr", "nan"], "Invalid value for --lr: nan is not"),
    (["eval", "--json", "{data}/metrics.json"], "Invalid value for --json: "),
    (["eval", "--results", "{data}/sub/results.json"], "people.json is a file, so no folder can be made there"),
    (["bench", "--json", "{data}/bench.json"], "people.json is a file, so no folder can be made there"),
    (["verify", ".", "--json", "{data}/verify.json"], "people.json is a file, so no folder can be made there"),
    (["export", "--format", "torchscript", "--out", "{data}/models"], "Invalid value for --out: "),
    (["predict", "--sample", "--out", "{data}/pred"], "people.json is a file, so no folder can be made there"),
    (["train", "--work-dir", "{data}/run"], "Invalid value for --work-dir: "),
    (["qat", "--data", "{data}", "--out", "{data}/qat"], "people.json is a file, so no folder can be made there"),
    (["bench", "--runs", "0"], "Invalid value for '--runs': 0 is not in the range x>=1"),
    (["bench", "--rounds", "0"], "Invalid value for '--rounds': 0 is not in the range x>=1"),
    (["bench", "--warmup", "-1"], "Invalid value for '--warmup': -1 is not in the range x>=0"),
    (["bench", "--threads", "1,0"], "Invalid value for '--threads': 1,0: each thread count must be 1 or more"),
    (["bench", "--threads", "two"], "Invalid value for '--threads': expected comma-separated integers"),
])
def test_impossible_values_are_usage_errors(tmp_path, args, says):
    """Values no run could use fail as usage errors naming the option, before any work (no traceback, no
    28 GiB allocation for a typo)."""
    data = tmp_path / "people.json"
    data.write_text("{}")
    args = [a.replace("{data}", str(data)) for a in args]
    out_option = {"predict": "--out", "qat": "--out", "train": "--work-dir"}.get(args[0])
    if out_option in args:
        out_option = None
    r = CliRunner().invoke(main, args + [out_option, str(tmp_path / "o")] if out_option else args)
    assert r.exit_code == 2, r.output
    assert says in r.output
    assert not (tmp_path / "o").exists()


def test_the_same_options_are_accepted_where_they_apply(tmp_path):
    r = CliRunner().invoke(main, ["export", "--format", "torchscript", "--weights", "random", "--seed", "3",
                                  "--no-detector", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output


def test_verify_status_is_skip_when_the_artifact_could_not_run():
    ran = ArtifactResult("a.pte", "executorch")
    ran.add("integrity", True), ran.add("run", True)
    skipped = ArtifactResult("a.mlpackage", "coreml")
    skipped.add("integrity", True), skipped.add("run", None, "Core ML predict() needs macOS")
    not_loaded = ArtifactResult("b.pte", "executorch")
    not_loaded.add("integrity", None, "no manifest.json next to it"), not_loaded.add("load", None, "re-export them")
    failed = ArtifactResult("c.tflite", "tflite")
    failed.add("run", None, "no runtime"), failed.add("metadata", False, "bad")
    no_manifest_but_ran = ArtifactResult("d.tflite", "tflite")
    no_manifest_but_ran.add("integrity", None, "no manifest.json next to it"), no_manifest_but_ran.add("run", True)
    assert [r.status for r in (ran, skipped, not_loaded, failed, no_manifest_but_ran)] == \
        ["PASS", "SKIP", "SKIP", "FAIL", "PASS"]
    assert skipped.ok and not failed.ok  # a skip does not fail the verify command
