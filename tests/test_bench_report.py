"""benchmarks.report: ratios within one run, goal checks, the generated page and charts."""
from __future__ import annotations

import json

import matplotlib  # noqa: F401  (the dev extra: it renders the charts; a broken install fails here)

from benchmarks import report, suite
from mobile_export.bench import BenchTarget


def _row(name, fmt, threads, ms, **target):
    return {"target": {"name": name, "format": fmt, **target}, "threads": threads, "status": "ok", "reason": "",
            "median_ms": ms, "p10_ms": ms * 0.9, "p90_ms": ms * 1.2, "peak_rss_mb": 300.0}


def _doc():
    rows = []
    for threads, scale in ((1, 1.0), (2, 0.6)):
        for model, et, lite in (("litehrnet_18", 40.0, 20.0), ("rtmpose_t", 12.0, 14.0),
                                ("starpose_t/deploy", 10.0, 13.0), ("starpose_s/deploy", 20.0, 24.0)):
            rows.append(_row(f"{model} [executorch]", "executorch", threads, et * scale))
            rows.append(_row(f"{model} [tflite]", "tflite", threads, lite * scale))
        rows.append(_row("blazepose_lite [tflite]", "tflite", threads, 9.0 * scale))
        for prec, ms in (("fp32", 10.5), ("int8", 4.0)):
            rows.append(_row(f"starpose_t_xnnpack_{prec}.pte", "executorch", threads, ms * scale, variant="starpose_t",
                             precision=prec, size_bytes=4_000_000 if prec == "fp32" else 1_000_000,
                             export_seconds=30.0))
        rows.append(_row("person_detector_xnnpack_fp32.pte", "executorch", threads, 16.0 * scale,
                         variant="nanodet_g", precision="fp32", kind="detector"))
    return {"rows": rows, "runs": 10, "rounds": 2, "warmup": 1, "date": "2026-11-25",
            "machine": {"cpu_model": "Test CPU", "cpus_usable": 2, "versions": {}},
            "gemm_gmacs_per_s": {"1": 50.0, "2": 95.0},
            "model_stats": {"starpose_s/deploy": {"params": 1898229, "macs": 0.446e9},
                            "litehrnet_18": {"params": 1130769, "macs": 0.242e9}},
            "published_coco_ap": {"starpose_t": 67.2, "starpose_s": 70.0, "litehrnet_18": 64.8, "rtmpose_t": 68.5}}


def test_goals_are_ratios_within_the_run():
    got = {g: (v, ok) for g, v, ok in report.goals(report.Results(_doc()))}
    assert got["StarPose-t fp32 ≤ 0.5x (ET) / 0.7x (LiteRT) Lite-HRNet-18, ExecuTorch XNNPACK, 1 thread"] == ("0.25x", True)
    assert got["StarPose-t fp32 ≤ 0.5x (ET) / 0.7x (LiteRT) Lite-HRNet-18, LiteRT, 1 thread"] == ("0.65x", True)
    assert got["StarPose-t fp32 ≤ 1.0x RTMPose-t, ExecuTorch XNNPACK, 1 thread"] == ("0.83x", True)
    assert got["StarPose-s fp32 ≤ 0.8x Lite-HRNet-18, LiteRT, 1 thread"] == ("1.20x", False)
    assert got["starpose_t int8 .pte ≤ 0.5x its fp32 .pte (1 thread)"] == ("0.38x", True)
    assert got["starpose_s int8 .pte ≤ 0.5x its fp32 .pte (1 thread)"] == ("not measured", None)
    assert got["StarPose-t int8 faster than BlazePose-lite fp32 (1 thread), ratio"] == ("0.44x", True)
    # 0.446 GMAC in 20 ms = 22.3 GMAC/s = 44.6% of 50 GMAC/s
    assert got["StarPose-s fp32 reaches ≥ 30% of the 1-thread GEMM rate (ExecuTorch)"] == ("44.60%", True)
    assert got["StarPose-s 2 threads ≥ 1.6x faster than 1, ExecuTorch XNNPACK"] == ("1.67x", True)
    # deploy-speed goals
    assert got["StarPose-t fp32 ≤ 0.75x RTMPose-t, ExecuTorch XNNPACK, 1 thread"] == ("0.83x", False)
    assert got["StarPose-t fp32 ≤ 0.75x RTMPose-t, LiteRT, 1 thread"] == ("0.93x", False)
    # bundle 10.5 ms vs network 10.0 ms (ExecuTorch); no LiteRT bundle, no starpose_s bundle
    assert got["starpose_t fp32 bundle ≤ 1.05x the network alone, ExecuTorch XNNPACK, 1 thread"] == ("1.05x", True)
    assert got["starpose_t fp32 bundle ≤ 1.05x the network alone, ExecuTorch XNNPACK, 2 threads"] == ("1.05x", True)
    assert got["starpose_t fp32 bundle ≤ 1.05x the network alone, LiteRT, 1 thread"] == ("not measured", None)
    assert got["StarPose-t 2 threads ≥ 1.5x faster than 1, LiteRT"] == ("1.67x", True)
    assert got["StarPose-s fp32 ≤ 0.8x Lite-HRNet-18, ExecuTorch XNNPACK and LiteRT, 1 thread (the larger)"] == (
        "1.20x", False)
    assert got["StarPose-s fp32 reaches ≥ 45% of the 1-thread GEMM rate (ExecuTorch)"] == ("44.60%", False)
    # detector 16 ms vs the pose bundle's 10.5 ms
    assert got["person detector fp32 ≤ 1.5x the StarPose-t fp32 bundle, ExecuTorch XNNPACK, 1 thread"] == (
        "1.52x", False)
    assert got["person detector fp32 ≤ 1.5x the StarPose-t fp32 bundle, LiteRT, 1 thread"] == ("not measured", None)


def test_page_and_charts(tmp_path):
    results = tmp_path / "2026-11-25-test.json"
    results.write_text(json.dumps(_doc()))
    page = report.main([str(results), "--docs", str(tmp_path / "docs")])
    text = page.read_text()
    assert "2026-11-25-test.json" in text and "Test CPU" in text
    assert "| Lite-HRNet-18 | 1.131M | 0.242 | 40.0 (1.00) | 20.0 (1.00) | – |" in text
    assert "| StarPose-t (deploy form) |  |  | 10.0 (0.25) | 13.0 (0.65) | – |" in text
    assert "| starpose_t_xnnpack_int8.pte | executorch | int8 | 4.0 | 2.4 | 0.38 |  |  | 1.00 | 30 | 300 |" in text
    assert "| starpose_t_xnnpack_fp32.pte | executorch | fp32 | 10.5 | 6.3 |  | 1.05 | 1.05 | 4.00 | 30 | 300 |" in text
    assert "this run timed the bundles in a group of their own" in text
    for png in ("bench_latency.png", "bench_ap.png"):
        data = (tmp_path / "docs" / "img" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_suite_times_each_bundle_in_its_runtimes_group():
    def target(name, fmt, backend="xnnpack", meta=False):
        return BenchTarget(name=name, format=fmt, path=name, backend=backend, has_metadata=meta)

    groups = suite.group_targets([
        target("starpose_t/deploy [executorch]", "executorch"), target("starpose_t/deploy [tflite]", "tflite"),
        target("starpose_t_xnnpack_fp32.pte", "executorch", meta=True), target("starpose_t_fp32.tflite", "tflite", meta=True),
        target("starpose_t_coreml_fp32.mlpackage", "coreml", backend="coreml", meta=True)])
    assert {k: [t.name for t in v] for k, v in groups.items()} == {
        "executorch": ["starpose_t/deploy [executorch]", "starpose_t_xnnpack_fp32.pte"],
        "tflite": ["starpose_t/deploy [tflite]", "starpose_t_fp32.tflite"]}


def test_paired_ratio_and_results_file_of_the_ab_scripts(tmp_path):
    """deploy_ab and bundle_overhead share these: a ratio of medians, the median of per-round
    ratios (the rounds interleave the two artifacts), and one results file with the machine."""
    from benchmarks.common import paired_ratio, write_bench_results
    from mobile_export.bench import BenchReport, BenchRow

    base = BenchRow(BenchTarget("a [executorch]", "executorch"), 1, times_ms=[10.0, 10.0, 12.0, 12.0, 14.0],
                    round_medians_ms=[10.0, 12.0, 14.0])
    other = BenchRow(BenchTarget("b [executorch]", "executorch"), 1, times_ms=[5.0, 6.0, 6.0, 7.0, 7.0],
                     round_medians_ms=[5.0, 12.0, 7.0])
    pair = paired_ratio(base, other)
    assert pair == {"base_median_ms": 12.0, "median_ms": 6.0, "ratio_of_medians": 0.5, "median_round_ratio": 0.5}
    report = BenchReport(rows=[base, other], runs=5, rounds=3, warmup=1, affinity=False, baseline=None, machine={})
    out = write_bench_results(report, "benchmarks.test", [1], "ab", tmp_path / "r.json", ratios=[pair])
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "benchmarks.test" and doc["ratios"] == [pair]
    assert doc["machine"]["threads"] == [1] and doc["machine"]["cpu_model"]
    assert [r["target"]["name"] for r in doc["rows"]] == ["a [executorch]", "b [executorch]"]
    assert not list(tmp_path.glob(".*tmp"))  # written via a temp file, nothing left behind


def test_results_files_name_home_paths_portably(tmp_path):
    from benchmarks.common import portable_paths, write_json

    home = str(tmp_path / "home" / "someone")
    doc = {"rows": [{"path": f"{home}/.cache/starpose/x.tflite"}, {"path": "out/bench-suite/raw/a.pte"}],
           "other": (f"{home}x/not-home", 3, None)}
    assert portable_paths(doc, home) == {
        "rows": [{"path": "~/.cache/starpose/x.tflite"}, {"path": "out/bench-suite/raw/a.pte"}],
        "other": [f"{home}x/not-home", 3, None]}
    import pathlib

    out = write_json(tmp_path / "r.json", {"p": str(pathlib.Path.home() / ".cache" / "a.tflite")})
    assert json.loads(out.read_text()) == {"p": "~/.cache/a.tflite"}
