"""``starpose-mobile bench``: every runnable artifact timed in its own runtime and process, thread
counts applied, foreign artifacts run on their declared inputs, clear errors. Timing *values* are
not asserted (they belong in benchmarks/), only that they are real measurements."""
from __future__ import annotations

import json
import shutil
import sys

import pytest

import executorch.runtime  # noqa: F401  (an extra the test command installs: a broken install fails here)
import ai_edge_litert  # noqa: F401  (an extra the test command installs: a broken install fails here)
import onnxruntime  # noqa: F401  (an extra the test command installs: a broken install fails here)

from click.testing import CliRunner  # noqa: E402

from mobile_export.bench import BenchTarget, collect_targets, eager_target, run_bench  # noqa: E402
from starpose.cli import main  # noqa: E402

RUNNABLE = {"starpose_t_xnnpack_fp32.pte", "starpose_t_fp32.tflite", "starpose_t_fp32.pt", "starpose_t_fp32.ptl",
            "starpose_t_fp32.onnx"}
APPLE_ONLY = {"starpose_t_coreml_fp32.pte", "starpose_t_fp32.mlpackage"}


def test_bench_times_every_artifact_of_an_export_dir_in_its_own_process(export_dir):
    targets = collect_targets([export_dir])
    assert {t.name for t in targets} == RUNNABLE | APPLE_ONLY
    for t in targets:  # size from the manifest, export time recorded at export
        assert t.size_bytes and t.size_bytes > 100_000 and t.export_seconds and t.export_seconds > 0
    targets.insert(0, eager_target("starpose_t", "random"))
    report = run_bench(targets, threads=[1], runs=4, rounds=2, warmup=1)
    rows = {r.target.name: r for r in report.rows}
    pids = set()
    for name in RUNNABLE | {"starpose_t eager"}:
        r = rows[name]
        assert r.status == "ok", (name, r.reason)
        assert len(r.times_ms) == 4 and len(r.round_medians_ms) == 2 and min(r.times_ms) > 0
        s = r.stats()
        assert s["p10_ms"] <= s["median_ms"] <= s["p90_ms"]
        assert r.peak_rss_mb and r.peak_rss_mb > 50 and r.load_seconds > 0
        assert (r.params, round(r.macs / 1e9, 3)) == (1_125_761, 0.241)  # the variant's, from the metadata
        pids.add(r.process["pid"])
    assert len(pids) == len(RUNNABLE) + 1, "each target must run in its own process"
    # LiteRT and ONNX Runtime workers never import torch: their peak memory is the runtime's own
    for name in ("starpose_t_fp32.tflite", "starpose_t_fp32.onnx"):
        assert rows[name].process["torch_loaded"] is False, name
        assert rows[name].peak_rss_mb < 0.6 * rows["starpose_t eager"].peak_rss_mb, (name, rows[name].peak_rss_mb)
    assert rows["starpose_t_fp32.pt"].process["torch_loaded"] is True
    assert rows["starpose_t eager"].ratio == pytest.approx(1.0)
    if sys.platform != "darwin":
        for name in APPLE_ONLY:
            reason = rows[name].reason
            assert rows[name].status == "skipped" and ("Apple" in reason or "macOS" in reason), reason
    text = report.render()
    assert "starpose_t_fp32.tflite" in text and "litert" in text and "skipped" in text
    doc = report.to_dict()
    assert doc["machine"]["versions"]["torch"] and len(doc["rows"]) == len(targets)
    json.dumps(doc)


def test_bench_thread_counts_reach_the_runtime(export_dir):
    report = run_bench([eager_target("starpose_t", "random")], threads=[1, 2], runs=2, rounds=1, warmup=0)
    assert [(r.threads, r.process["torch_threads"]) for r in report.rows] == [(1, 1), (2, 2)]


def test_bench_runs_a_foreign_tflite_on_its_declared_inputs(export_dir, tmp_path):
    """A .tflite without its sidecar (another project's model) runs on inputs of the declared shape."""
    shutil.copy(export_dir / "starpose_t_fp32.tflite", tmp_path / "other.tflite")
    (target,) = collect_targets([tmp_path / "other.tflite"])
    assert not target.has_metadata and target.variant is None
    (row,) = run_bench([target], runs=2, rounds=1, warmup=0).rows
    assert row.status == "ok" and len(row.times_ms) == 2 and row.params is None


def test_bench_cli_writes_json_for_each_thread_count(export_dir, tmp_path):
    out = tmp_path / "bench.json"
    res = CliRunner().invoke(main, ["bench", str(export_dir / "starpose_t_fp32.onnx"), "--threads", "1,2", "--runs",
                                    "2", "--rounds", "1", "--warmup", "0", "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert [(r["target"]["name"], r["threads"], r["status"]) for r in doc["rows"]] == [
        ("starpose_t_fp32.onnx", 1, "ok"), ("starpose_t_fp32.onnx", 2, "ok")]
    assert "onnxruntime" in res.output and "median" in res.output


@pytest.mark.parametrize("args, message", [
    (["--threads", "one"], "comma-separated integers"),
    (["--threads", "0"], "each thread count must be 1 or more"),
    (["--baseline", "nope"], "baseline 'nope' is not one of the targets"),
])
def test_bench_cli_bad_options(export_dir, args, message):
    res = CliRunner().invoke(main, ["bench", str(export_dir / "starpose_t_fp32.onnx"), "--runs", "1", *args])
    assert res.exit_code != 0 and message in res.output


def test_bench_errors_name_the_path(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no artifacts in this directory"):
        collect_targets([tmp_path])
    with pytest.raises(ValueError, match="notes.txt: not an artifact"):
        collect_targets([tmp_path / "notes.txt"])
    with pytest.raises(FileNotFoundError, match="missing.pte"):
        collect_targets([tmp_path / "missing.pte"])
    with pytest.raises(ValueError, match="share a name"):
        run_bench([BenchTarget("a", "eager"), BenchTarget("a", "eager")])


def test_bench_format_modules_are_the_exporters_formats():
    from mobile_export.bench import FORMAT_MODULES
    from mobile_export.formats import FORMATS

    assert set(FORMAT_MODULES) == set(FORMATS)
    for name in FORMAT_MODULES:
        assert FORMATS[name].open_runner.__module__ == f"mobile_export.{name}"


def test_bench_says_why_there_are_no_ratios_when_the_baseline_did_not_run(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer")
    targets = collect_targets([bad])
    targets.append(eager_target("starpose_t", "random"))
    report = run_bench(targets, threads=[1], runs=1, rounds=1, warmup=0)
    rows = {r.target.name: r for r in report.rows}
    assert rows["broken.tflite"].status != "ok" and rows["starpose_t eager"].status == "ok"
    assert rows["starpose_t eager"].ratio is None
    assert "ratio = median / median of broken.tflite at the same thread count (none at 1 thread(s): broken.tflite " \
           "did not run there)" in report.render()
