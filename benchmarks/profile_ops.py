"""Per-operator time inside ExecuTorch's XNNPACK delegate (ETDump + devtools Inspector).

This is how the 7x7 depthwise convolutions showed up as XNNPACK "Convolution IGEMM" (a grouped
GEMM, > 25 taps) instead of "DWConv"; use it to see where a graph's time goes.

    python -m benchmarks.profile_ops starpose_t/released starpose_t/deploy
    python -m benchmarks.profile_ops starpose_t/deploy --threads 2   # which ops a second thread speeds up
"""
from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import torch

from .common import MODELS, RESULTS, build_model, example_input, lower_executorch, machine_info, write_json


def profile(name: str, runs: int) -> dict:
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    x = example_input()
    pte = lower_executorch(build_model(name), x).to_executorch().buffer
    with tempfile.TemporaryDirectory() as tmp:
        program = Runtime.get().load_program(pte, enable_etdump=True, debug_buffer_size=int(2e8))
        method = program.load_method("forward")
        for _ in range(runs):
            method.execute([x])
        etdump = Path(tmp) / "run.etdp"
        program.write_etdump_result_to_file(str(etdump), str(Path(tmp) / "debug.bin"))
        frame = Inspector(etdump_path=str(etdump)).to_dataframe()
    frame = frame[frame.event_block_name == "Execute"]
    by_kind: dict[str, dict] = {}
    total = 0.0
    for event, ms in zip(frame.event_name, frame["p50 (ms)"]):
        if event == "Method::execute":
            total = float(ms)
            continue
        kind = re.sub(r" #\d+$", "", event)
        row = by_kind.setdefault(kind, {"ms": 0.0, "count": 0})
        row["ms"] += float(ms)
        row["count"] += 1
    ranked = dict(sorted(((k, {"ms": round(v["ms"], 3), "count": v["count"]}) for k, v in by_kind.items()),
                         key=lambda kv: -kv[1]["ms"]))
    return {"execute_p50_ms": round(total, 3), "by_op_kind_p50_ms": ranked}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", choices=list(MODELS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="XNNPACK and torch threads")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile_ops.json")
    args = parser.parse_args(argv)
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    torch.set_num_threads(args.threads)
    _unsafe_reset_threadpool(args.threads)
    results = {}
    for name in args.models:
        results[name] = profile(name, args.runs)
        print(name, results[name]["execute_p50_ms"], "ms", flush=True)
        for kind, row in list(results[name]["by_op_kind_p50_ms"].items())[:8]:
            print(f"    {row['ms']:8.3f} ms  x{row['count']:<4d} {kind}")
    return write_json(args.out, {"benchmark": "xnnpack op profile (ExecuTorch ETDump)", "precision": "fp32",
                                 "machine": machine_info(threads=args.threads), "results": results})


if __name__ == "__main__":
    print(main())
