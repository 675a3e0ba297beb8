"""Measure int8 against fp32 for the ExecuTorch/XNNPACK artifacts of one variant: time to
prepare + calibrate + convert + lower, ``.pte`` size, and latency at a fixed thread count.

Latency is taken the way ``benchmarks/latency.py`` takes it: the thread pool is set before any
program is loaded (``_unsafe_reset_threadpool``), both programs are loaded and checked first,
then timed in interleaved rounds (order reversed every other round) so that a noisy shared CPU
affects them alike; medians over all runs and per round are reported.

    python -m quantization.measure --variant starpose_t --weights runs/fixture/final.safetensors \\
        --calib ../shared/fixtures/coco --out int8_vs_fp32_starpose_t.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from starpose.fileio import atomic_write_json

__all__ = ["measure", "interleaved_latency", "main"]


def interleaved_latency(paths: dict[str, Path], *, threads: int = 1, rounds: int = 5, iters: int = 10,
                        warmup: int = 3, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Median / p10 / p90 milliseconds of ``forward`` for each ``.pte`` on one random uint8 crop."""
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    _unsafe_reset_threadpool(threads)
    from executorch.runtime import Runtime

    from mobile_export.metadata import read_metadata_file, sidecar_path

    runtime = Runtime.get()
    loaded = {}
    for name, path in paths.items():
        meta = read_metadata_file(sidecar_path(path))
        h, w = meta["input"]["height"], meta["input"]["width"]
        x = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (1, h, w, 3), dtype=np.uint8))
        program = runtime.load_program(Path(path))
        method = program.load_method("forward")
        for _ in range(warmup):
            method.execute([x])
        loaded[name] = (program, method, x)  # the Program owns its Method: keep both
    times: dict[str, list[float]] = {n: [] for n in paths}
    round_medians: dict[str, list[float]] = {n: [] for n in paths}
    for r in range(rounds):
        order = list(loaded.items()) if r % 2 == 0 else list(loaded.items())[::-1]
        for name, (_, method, x) in order:
            batch = []
            for _ in range(iters):
                t0 = time.perf_counter()
                method.execute([x])
                batch.append((time.perf_counter() - t0) * 1e3)
            times[name] += batch
            round_medians[name].append(statistics.median(batch))
    return {n: {"median_ms": round(statistics.median(t), 3), "p10_ms": round(float(np.percentile(t, 10)), 3),
                "p90_ms": round(float(np.percentile(t, 90)), 3),
                "round_medians_ms": [round(v, 3) for v in round_medians[n]], "runs": len(t)}
            for n, t in times.items()}


def measure(variant: str, weights: str, calib: str, out_dir: Path, *, threads: int = 1, rounds: int = 5,
            iters: int = 10, calibration_limit: int | None = None, int8_depthwise: bool = False) -> dict[str, Any]:
    """``int8_depthwise``: quantize the depthwise convolutions too (the scheme's default keeps them
    float, see ``quantization.schemes.XNNPACK_INT8``)."""
    from functools import partial

    from mobile_export.base import ExportOptions
    from mobile_export.bench import machine_description
    from mobile_export.executorch import export_executorch
    from mobile_export.source import deploy_network, resolve_model

    from .calibration import calibration_batches, calibration_loader, resolve_coco_source
    from .pt2e import Timings, export_executorch_int8, quantize_ptq
    from .schemes import SCHEMES, with_int8_depthwise

    torch.set_num_threads(threads)
    model, info = resolve_model(variant, weights)
    network = deploy_network(model)
    source = resolve_coco_source(calib)
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    fp32 = partial(export_executorch, backends=("xnnpack",))(network, out_dir, ExportOptions(weights=info))
    fp32_lower_s = time.perf_counter() - t0
    timings = Timings()
    batches = calibration_batches(calibration_loader(source, network.spec, batch_size=8, limit=calibration_limit))
    scheme = with_int8_depthwise(SCHEMES["int8-ptq"]) if int8_depthwise else SCHEMES["int8-ptq"]
    qnet = quantize_ptq(network, scheme, batches, timings=timings, calibration_source=str(source))
    int8 = export_executorch_int8(qnet, out_dir, weights=info, timings=timings)
    pte = {"fp32": fp32[0], "int8": int8[0]}
    latency = interleaved_latency(pte, threads=threads, rounds=rounds, iters=iters)
    sizes = {k: p.stat().st_size for k, p in pte.items()}
    return {
        "variant": variant, "weights": info.to_dict(), "calibration": str(source), "crops": qnet.calibration["crops"],
        "threads": threads, "machine": {"processor": platform.processor() or platform.machine(),
                                        "cpu": machine_description()["cpu_model"], "python": platform.python_version(),
                                        "torch": torch.__version__},
        "float_depthwise": scheme.executorch.float_depthwise,
        "int8_pipeline_s": timings.to_dict(), "fp32_lower_s": round(fp32_lower_s, 2),
        "size_bytes": sizes, "size_ratio": round(sizes["int8"] / sizes["fp32"], 4),
        "latency": latency, "speedup": round(latency["fp32"]["median_ms"] / latency["int8"]["median_ms"], 3),
        "artifacts": {k: p.name for k, p in pte.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="starpose_t")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--calib", required=True, help="COCO keypoints json or folder of calibration people")
    parser.add_argument("--artifacts", type=Path, default=Path("out/quant_measure"))
    parser.add_argument("--out", type=Path, required=True, help="JSON results file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--int8-depthwise", action="store_true",
                        help="quantize depthwise convolutions too (default: float, the int8-ptq scheme's choice)")
    args = parser.parse_args(argv)
    result = measure(args.variant, args.weights, args.calib, args.artifacts, threads=args.threads,
                     rounds=args.rounds, iters=args.iters, int8_depthwise=args.int8_depthwise)
    atomic_write_json(args.out, result, indent=2)
    print(json.dumps({k: result[k] for k in ("variant", "float_depthwise", "int8_pipeline_s", "size_ratio", "speedup")},
                     indent=1))
    return result


if __name__ == "__main__":
    main()
