"""The whole latency table in one run: StarPose (released and deploy forms), Lite-HRNet-18/30,
RTMPose-t/s and MediaPipe BlazePose lite/full/heavy, through the same runtimes, at 1 and 2 threads,
timed by ``mobile_export.bench`` (one process per artifact and thread count, interleaved rounds).

    python -m benchmarks.suite                      # build what is missing, time, write results
    python -m benchmarks.suite --threads 1 --runs 20 --models starpose_t/deploy litehrnet_18
    python -m benchmarks.report benchmarks/results/<date>-<machine>.json   # → docs/BENCHMARKS.md

Artifacts (built once into ``--work``, reused while their files exist):

- ``raw/``: each network alone (normalized float NCHW in, its own outputs) as an ExecuTorch XNNPACK
  ``.pte``, a LiteRT ``.tflite`` and an ONNX ``.onnx`` — the like-for-like comparison;
- ``bundle/``: StarPose-t and -s as shipped (uint8 crop in, keypoints out) in fp32 and int8
  (PT2E → XNNPACK ``.pte``; LiteRT full-integer ``.tflite``), built by ``starpose-mobile export``,
  and the bundled person detector (fp32, exported with StarPose-t fp32: uint8 frame in, boxes out);
- BlazePose landmark ``.tflite`` files from the ``$STARPOSE_CACHE/blazepose`` folder that
  ``recipes/default_weights/gather.py fetch-teacher`` fills from the mediapipe wheel.

Weights are random (BatchNorm statistics calibrated on a random batch): latency does not depend
on their values. Also measured in the same run: the 1-thread fp32 GEMM rate of this CPU
(``torch.mm`` 1024x1024), to say what fraction of the machine's arithmetic rate a model reaches.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from starpose.fileio import atomic_write_bytes

from .common import MODELS, RESULTS, build_model, example_input, lower_executorch, machine_slug, to_litert, write_json

SUITE_MODELS = ("starpose_t/released", "starpose_t/deploy", "starpose_s/released", "starpose_s/deploy",
                "litehrnet_18", "litehrnet_30", "rtmpose_t", "rtmpose_s")
RAW_FORMATS = ("executorch", "tflite", "onnx")
SUFFIX = {"executorch": ".pte", "tflite": ".tflite", "onnx": ".onnx"}
BUNDLES = (  # (variant, precision, format)
    ("starpose_t", "fp32", "executorch"), ("starpose_t", "int8", "executorch"),
    ("starpose_t", "fp32", "tflite"), ("starpose_t", "int8", "tflite"),
    ("starpose_s", "fp32", "executorch"), ("starpose_s", "int8", "executorch"),
    ("starpose_s", "fp32", "tflite"), ("starpose_s", "int8", "tflite"),
)
BLAZEPOSE = ("lite", "full", "heavy")
# The bundled person detector is exported (fp32, each format) next to this bundle only.
DETECTOR_WITH = ("starpose_t", "fp32")

# Published COCO val2017 AP at 256x192 (GT-box-free, detector boxes): for the chart only.
# StarPose: the authors' earlier release (StarPose-16 ~ t, StarPose-18 ~ s), the only figures they
# published; RTMPose: its paper's table; Lite-HRNet: its paper.
PUBLISHED_AP = {"starpose_t": 67.2, "starpose_s": 70.0, "litehrnet_18": 64.8, "litehrnet_30": 67.2,
                "rtmpose_t": 68.5, "rtmpose_s": 72.2}


def _slug(name: str) -> str:
    return name.replace("/", "-")


def _model_stats(name: str) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(name.replace("/deploy", "/released"))  # parameters as released (deploy folds BN)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example_input())
    return {"params": sum(p.numel() for p in model.parameters()), "macs": counter.get_total_flops() / 2}


def _export_raw(name: str, fmt: str, path: Path) -> float:
    model = build_model(name)
    x = example_input()
    start = time.perf_counter()
    if fmt == "executorch":
        data = lower_executorch(model, x).to_executorch().buffer
    elif fmt == "tflite":
        data = to_litert(model, x)
    else:
        program = torch.onnx.export(model, (x,), dynamo=True, opset_version=18, verbose=False)
        data = program.model_proto.SerializeToString()
    seconds = time.perf_counter() - start
    atomic_write_bytes(path, data)
    return seconds


def build_raw(work: Path, models: list[str], formats: list[str], log=print) -> dict:
    from mobile_export.manifest import read_manifest, update_manifest

    out = work / "raw"
    out.mkdir(parents=True, exist_ok=True)
    have = (read_manifest(out) or {"artifacts": {}})["artifacts"]
    for name in models:
        for fmt in formats:
            file = f"{_slug(name)}{SUFFIX[fmt]}"
            if file in have and (out / file).exists():
                continue
            log(f"raw: exporting {name} as {fmt}")
            try:
                seconds = _export_raw(name, fmt, out / file)
            except Exception as e:  # noqa: BLE001 - one failed conversion is a row of the table, not the end
                log(f"raw: {name} {fmt} failed: {type(e).__name__}: {str(e)[:300]}")
                continue
            update_manifest(out, {file: {"role": "model", "format": fmt, "precision": "fp32",
                                         "model": name, "export_seconds": round(seconds, 2)}})
    return (read_manifest(out) or {"artifacts": {}})["artifacts"]


def build_bundles(work: Path, bundles, calib: str | None, log=print) -> None:
    from mobile_export.manifest import read_manifest

    out = work / "bundle"
    have = (read_manifest(out) or {"artifacts": {}})["artifacts"] if out.exists() else {}
    for variant, precision, fmt in bundles:
        if any(n.startswith(f"{variant}_") and e.get("format") == fmt and e.get("precision") == precision
               and e.get("backend", "xnnpack") != "coreml" for n, e in have.items()):
            continue
        cmd = [sys.executable, "-m", "starpose.cli", "export", "--format", fmt, "--precision", precision,
               "--variant", variant, "--weights", "random", "--out", str(out)]
        if precision == "int8" and calib:
            cmd += ["--calib-data", calib]
        if (variant, precision) != DETECTOR_WITH:
            cmd += ["--no-detector"]
        log("bundle: " + " ".join(cmd[3:]))
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            log(f"bundle: {variant} {precision} {fmt} failed: {result.stderr.strip()[-500:]}")


def blazepose_files() -> list[Path]:
    from starpose.distill.blazepose import teacher_dir

    root = teacher_dir()
    return [p for p in (root / f"pose_landmark_{v}.tflite" for v in BLAZEPOSE) if p.is_file()]


def gemm_rate(threads: int = 1, n: int = 1024, seconds: float = 2.0) -> float:
    """Sustained fp32 ``torch.mm`` rate in GMAC/s at ``threads`` (run in a fresh process)."""
    code = (
        "import time, torch\n"
        f"torch.set_num_threads({threads}); a = torch.randn({n}, {n}); b = torch.randn({n}, {n})\n"
        "for _ in range(3): a @ b\n"
        "t = time.perf_counter(); k = 0\n"
        f"while time.perf_counter() - t < {seconds}: a @ b; k += 1\n"
        f"print(k * {n}**3 / (time.perf_counter() - t) / 1e9)\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env=env).stdout.strip())


def group_targets(targets: list) -> dict[str, list]:
    """Interleaving groups: one per runtime, the shipped bundles in the same group (the same rounds)
    as the networks alone, so "bundle / network" is a ratio within one group rather than across
    groups timed minutes apart. A group's processes stay alive through its rounds (one runs at a
    time); one group per runtime keeps memory bounded. Core ML is left out: it runs on Apple
    platforms only (`starpose-mobile bench` reports it as skipped)."""
    groups: dict[str, list] = {}
    for t in targets:
        if t.backend != "coreml":
            groups.setdefault(t.format, []).append(t)
    return groups


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/bench-suite"))
    parser.add_argument("--models", nargs="+", default=list(SUITE_MODELS), choices=list(MODELS))
    parser.add_argument("--formats", nargs="+", default=list(RAW_FORMATS), choices=RAW_FORMATS)
    parser.add_argument("--no-bundles", action="store_true", help="skip the shipped (bundled, fp32/int8) artifacts")
    parser.add_argument("--no-blazepose", action="store_true")
    parser.add_argument("--calib-data", default=None, help="COCO keypoints json for int8 calibration (default: the fixture)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--build-only", action="store_true", help="build the artifacts, time nothing")
    parser.add_argument("--out", type=Path, default=None, help="default: results/<date>-<machine>.json")
    args = parser.parse_args(argv)

    from mobile_export.bench import BenchTarget, collect_targets, machine_description, run_bench

    torch.manual_seed(0)
    raw = build_raw(args.work, args.models, args.formats)
    if not args.no_bundles:
        build_bundles(args.work, BUNDLES, args.calib_data)
    if args.build_only:
        print(f"artifacts in {args.work}")
        return args.work
    targets: list[BenchTarget] = []
    stats = {name: _model_stats(name) for name in args.models}
    raw_targets = collect_targets([args.work / "raw"])
    for t in raw_targets:
        entry = raw.get(Path(t.path).name, {})
        if entry.get("model") in args.models and entry.get("format") in args.formats:
            t.name = f"{entry['model']} [{t.format}]"
            t.precision = "fp32"
            targets.append(t)
    if not args.no_bundles and (args.work / "bundle").exists():
        targets += collect_targets([args.work / "bundle"])
    missing_blazepose = []
    if not args.no_blazepose:
        files = blazepose_files()
        missing_blazepose = [v for v in BLAZEPOSE if not any(f.name == f"pose_landmark_{v}.tflite" for f in files)]
        for f in files:
            (t,) = collect_targets([f])
            t.name = f"blazepose_{f.stem.split('_')[-1]} [tflite]"
            t.precision = "fp32"
            targets.append(t)
    threads = [int(t) for t in args.threads.split(",")]
    # The GEMM rate is the denominator of "fraction of the GEMM rate": sampled before and after the
    # timing (a shared host's load moves it by a third between runs) and the best sample kept, so
    # that a slow moment cannot make the networks look closer to the machine's peak than they are.
    gemm_samples = {str(n): [round(gemm_rate(n), 2)] for n in threads}
    groups = group_targets(targets)
    print(f"timing {sum(map(len, groups.values()))} artifacts in {len(groups)} groups at {threads} threads", flush=True)
    reports = []
    for key, group in groups.items():
        print(f"group {key}: {len(group)} artifacts", flush=True)
        reports.append(run_bench(group, threads=threads, runs=args.runs, rounds=args.rounds, warmup=args.warmup,
                                 progress=print))
    report = reports[0]
    report.rows = [row for r in reports for row in r.rows]
    report.seconds = sum(r.seconds for r in reports)
    report.baseline = "per group: the first artifact (docs/BENCHMARKS.md takes ratios against Lite-HRNet-18)"
    print(report.render(), flush=True)
    for n in threads:
        gemm_samples[str(n)].append(round(gemm_rate(n), 2))
    rates = {n: max(v) for n, v in gemm_samples.items()}
    payload = report.to_dict()
    payload["benchmark"] = "benchmarks.suite"
    payload["date"] = _dt.date.today().isoformat()
    payload["machine"] = machine_description(threads)
    payload["gemm_gmacs_per_s"] = rates
    payload["gemm_samples_gmacs_per_s"] = gemm_samples  # before and after the timing; the best is kept
    payload["model_stats"] = stats
    payload["published_coco_ap"] = PUBLISHED_AP
    payload["raw_models"] = {f"{e.get('model')} [{e.get('format')}]": e.get("model") for e in raw.values()}
    payload["notes"] = {
        "weights": "random; BatchNorm statistics calibrated on a random batch",
        "raw": "network alone, float NCHW 1x3x256x192 in",
        "bundle": "as shipped: uint8 HWC crop in, keypoints + scores out (pre/post in the graph)",
        "blazepose_missing": missing_blazepose,
        "grouping": "runtime",  # bundles timed in the same rounds as the networks of their runtime
    }
    out = args.out or RESULTS / f"{payload['date']}-{machine_slug(payload['machine'])}.json"
    write_json(out, payload)
    print(f"results: {out}  (GEMM {rates} GMAC/s)", flush=True)
    return out


if __name__ == "__main__":
    main()
