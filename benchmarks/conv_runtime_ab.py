"""The same single convolution in ExecuTorch XNNPACK and in LiteRT, one process, 1 thread.

    python -m benchmarks.conv_runtime_ab

Why: the bundled detector (dense 3x3 convolutions) runs about 1.25x slower in LiteRT than in
ExecuTorch while StarPose-t runs at the same speed in both (docs/DETECTOR.md). Timing the
detector's convolution shapes alone, in alternating rounds, separates what the runtimes' kernels
cost from what the graph does. LiteRT's graph also holds the NCHW <-> NHWC transposes that
litert-torch puts around a float NCHW input and output (the 1x1 case shows what they weigh).
Results: ``results/<date>-conv-runtime-ab.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .common import RESULTS, litert_interpreter, lower_executorch, machine_info, to_litert, write_json

CASES = {  # name: (module, NCHW input shape): NanoDet-g's convolutions at the 256x192 input
    "conv3x3 64->64 @64x48": (lambda: nn.Conv2d(64, 64, 3, 1, 1), (1, 64, 64, 48)),
    "conv3x3 + LeakyReLU 64->64 @64x48": (lambda: nn.Sequential(nn.Conv2d(64, 64, 3, 1, 1), nn.LeakyReLU(0.1)),
                                          (1, 64, 64, 48)),
    "conv3x3 128->128 @32x24": (lambda: nn.Conv2d(128, 128, 3, 1, 1), (1, 128, 32, 24)),
    "conv3x3 stride 2 64->128 @64x48": (lambda: nn.Conv2d(64, 128, 3, 2, 1), (1, 64, 64, 48)),
    "conv1x1 256->128 @16x12": (lambda: nn.Conv2d(256, 128, 1), (1, 256, 16, 12)),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per round and runtime")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    _unsafe_reset_threadpool(1)  # before any program is loaded
    from executorch.runtime import Runtime

    runtime = Runtime.get()
    results = {}
    for name, (make, shape) in CASES.items():
        model, x = make().eval(), torch.randn(*shape)
        with torch.no_grad():
            pte = lower_executorch(model, x).to_executorch().buffer
            tflite = to_litert(model, x)
        method = runtime.load_program(pte).load_method("forward")
        interp = litert_interpreter(tflite, 1)
        inp = interp.get_input_details()[0]
        x_lt = x.numpy() if tuple(inp["shape"]) == tuple(x.shape) else x.permute(0, 2, 3, 1).contiguous().numpy()

        def run_lt():
            interp.set_tensor(inp["index"], x_lt)
            interp.invoke()

        calls = {"executorch": lambda: method.execute([x]), "litert": run_lt}
        for call in calls.values():
            for _ in range(10):
                call()
        times: dict[str, list[float]] = {k: [] for k in calls}
        for r in range(args.rounds):
            for key in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
                for _ in range(args.runs):
                    start = time.perf_counter()
                    calls[key]()
                    times[key].append(time.perf_counter() - start)
        med = {k: round(1e3 * float(np.median(v)), 4) for k, v in times.items()}
        results[name] = {**{f"{k}_ms": v for k, v in med.items()},
                         "litert_over_executorch": round(med["litert"] / med["executorch"], 3)}
        print(f"{name:>36}: ExecuTorch {med['executorch']:.3f} ms, LiteRT {med['litert']:.3f} ms, "
              f"{results[name]['litert_over_executorch']:.2f}x", flush=True)
    payload = {"benchmark": "conv_runtime_ab", "date": datetime.date.today().isoformat(),
               "machine": machine_info(threads=1), "rounds": args.rounds, "runs_per_round": args.runs,
               "results": results}
    out = args.out or RESULTS / f"{payload['date']}-conv-runtime-ab.json"
    write_json(out, payload)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
