"""How much of each network a mobile delegate takes: XNNPACK subgraphs and leftover ops.

ExecuTorch: ``to_edge_transform_and_lower(torch.export.export(m, (x,)), [XnnpackPartitioner()])``,
then count ``executorch_call_delegate`` nodes and every other compute node of the lowered graph
(those run on the portable CPU kernels). LiteRT: ``litert_torch.convert`` and count the XNNPACK
delegate partitions and the ops the interpreter still runs itself.

    python -m benchmarks.delegation                       # default model set, both runtimes
    python -m benchmarks.delegation --runtimes executorch --models starpose_t/released starpose_t/deploy
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .common import (DEFAULT_MODELS, MODELS, RESULTS, build_model, example_input, executorch_delegation,
                     litert_delegation, lower_executorch, machine_info, to_litert, write_json)

RUNTIMES = ("executorch", "litert")


def measure(name: str, runtime: str) -> dict:
    model, x = build_model(name), example_input()
    start = time.perf_counter()
    if runtime == "executorch":
        report = executorch_delegation(lower_executorch(model, x))
    else:
        report = litert_delegation(to_litert(model, x))
    report["lowering_s"] = round(time.perf_counter() - start, 1)
    return report


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(MODELS))
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    parser.add_argument("--out", type=Path, default=RESULTS / "delegation.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, dict] = {}
    for runtime in args.runtimes:
        for name in args.models:
            report = measure(name, runtime)
            results.setdefault(runtime, {})[name] = report
            print(f"{runtime:10s} {name:22s} subgraphs={report['delegated_subgraphs']:3d} "
                  f"non-delegated ops={report['non_delegated_ops']:3d} {report['non_delegated_by_op']}", flush=True)
    payload = {"benchmark": "delegation", "precision": "fp32", "input_shape": list(example_input().shape),
               "machine": machine_info(threads=1), "results": results}
    return write_json(args.out, payload)


if __name__ == "__main__":
    print(main())
