"""fp32 CPU latency of StarPose (released and deploy forms) and its peers, in ExecuTorch (XNNPACK)
and LiteRT, at a fixed thread count.

Every model is lowered, loaded and checked against its eager outputs first; then all
(runtime, model) pairs are timed in interleaved rounds (order reversed every other round) so that
a noisy shared CPU affects them alike. Reported: median / p10 / p90 over all timed runs, each
round's median, and each model's ratio to a reference model within the same runtime.

    python -m benchmarks.latency                          # defaults: 1 thread, 5 rounds x 10 runs
    python -m benchmarks.latency --runtimes executorch --rounds 3 --iters 5
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .common import (DEFAULT_MODELS, MODELS, RESULTS, build_model, example_input, litert_interpreter,
                     lower_executorch, machine_info, to_litert, write_json)

RUNTIMES = ("executorch", "litert")


@dataclass
class Runner:
    runtime: str
    model: str
    run: Callable[[], list[np.ndarray]]
    max_abs_vs_eager: float
    keep: tuple = ()  # objects that must outlive ``run`` (an ExecuTorch Program owns its Method)
    times_ms: list[float] = field(default_factory=list)
    round_medians_ms: list[float] = field(default_factory=list)


def _eager_outputs(model: torch.nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(x)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _max_abs(outs: list[np.ndarray], refs: list[np.ndarray]) -> float:
    if [o.shape for o in outs] != [r.shape for r in refs]:
        raise RuntimeError(f"output shapes {[o.shape for o in outs]} != eager {[r.shape for r in refs]}")
    return float(max(np.abs(o - r).max() for o, r in zip(outs, refs)))


def executorch_runner(name: str, x: torch.Tensor) -> Runner:
    from executorch.runtime import Runtime

    model = build_model(name)
    program = Runtime.get().load_program(lower_executorch(model, x).to_executorch().buffer)
    method = program.load_method("forward")

    def run() -> list[np.ndarray]:
        return [o.numpy() for o in method.execute([x])]

    return Runner("executorch", name, run, _max_abs(run(), _eager_outputs(model, x)), keep=(program, method))


def litert_runner(name: str, x: torch.Tensor, threads: int) -> Runner:
    model = build_model(name)
    interpreter = litert_interpreter(to_litert(model, x), threads)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.numpy())
    outputs = [d["index"] for d in interpreter.get_output_details()]

    def run() -> list[np.ndarray]:
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    refs = _eager_outputs(model, x)
    outs = run()  # LiteRT may order the outputs differently: match them to eager ones by shape
    order = sorted(range(len(outs)), key=lambda i: (outs[i].shape, i))
    ref_order = sorted(range(len(refs)), key=lambda i: (refs[i].shape, i))
    matched = [None] * len(refs)
    for i, j in zip(order, ref_order):
        matched[j] = outputs[i]
    outputs[:] = matched
    return Runner("litert", name, run, _max_abs(run(), refs), keep=(interpreter,))


def _summary(r: Runner) -> dict:
    t = np.asarray(r.times_ms)
    return {"median_ms": round(float(np.median(t)), 3), "p10_ms": round(float(np.percentile(t, 10)), 3),
            "p90_ms": round(float(np.percentile(t, 90)), 3), "runs": len(t),
            "round_medians_ms": [round(m, 3) for m in r.round_medians_ms],
            "max_abs_vs_eager": r.max_abs_vs_eager}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(MODELS))
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=10, help="timed runs per model per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reference", default="starpose_t/released", help="ratios are relative to this model")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if "executorch" in args.runtimes:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(args.threads)  # before any program is loaded
    x = example_input()
    runners: list[Runner] = []
    for runtime in args.runtimes:
        for name in args.models:
            runner = executorch_runner(name, x) if runtime == "executorch" else litert_runner(name, x, args.threads)
            print(f"loaded {runtime:10s} {name:22s} max|out - eager| = {runner.max_abs_vs_eager:.2e}", flush=True)
            runners.append(runner)

    for r in runners:
        for _ in range(args.warmup):
            r.run()
    for rnd in range(args.rounds):
        for r in (runners if rnd % 2 == 0 else runners[::-1]):
            times = []
            for _ in range(args.iters):
                start = time.perf_counter()
                r.run()
                times.append((time.perf_counter() - start) * 1e3)
            r.times_ms.extend(times)
            r.round_medians_ms.append(statistics.median(times))

    results: dict[str, dict] = {}
    for r in runners:
        results.setdefault(r.runtime, {})[r.model] = _summary(r)
    for runtime, table in results.items():
        ref = table.get(args.reference, {}).get("median_ms")
        for name, row in table.items():
            row["ratio_to_reference"] = round(row["median_ms"] / ref, 3) if ref else None
            print(f"{runtime:10s} {name:22s} {row['median_ms']:8.2f} ms  x{row['ratio_to_reference']}", flush=True)
    payload = {"benchmark": "latency", "precision": "fp32", "input_shape": list(x.shape),
               "reference": args.reference, "rounds": args.rounds, "iters_per_round": args.iters,
               "warmup": args.warmup, "machine": machine_info(args.threads), "results": results}
    return write_json(args.out, payload)


if __name__ == "__main__":
    print(main())
