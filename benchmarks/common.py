"""What the benchmark scripts share: the model table, lowering to ExecuTorch / LiteRT, delegation
counts, the machine description and atomic JSON output.

Models carry random weights with BatchNorm statistics calibrated on a random batch
(:func:`benchmarks.peers.calibrate_batchnorm`): latency does not depend on the weights' values,
but it does depend on activations staying in a normal floating-point range.
"""
from __future__ import annotations

import collections
import datetime as _dt
import os
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from starpose.fileio import atomic_write_json

from .peers import calibrate_batchnorm, create_peer

__all__ = [
    "MODELS", "DEFAULT_MODELS", "RESULTS", "BenchModel", "build_model", "example_input",
    "lower_executorch", "executorch_delegation", "to_litert", "litert_delegation",
    "machine_info", "machine_slug", "portable_paths", "write_json", "paired_ratio", "write_bench_results",
]

RESULTS = Path(__file__).parent / "results"
INPUT_SHAPE = (1, 3, 256, 192)


@dataclass(frozen=True)
class BenchModel:
    name: str
    family: str  # starpose | peer
    form: str  # released | deploy | mmpose
    build: Callable[[], nn.Module]


def _starpose(variant: str, deploy: bool) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from starpose.models import create_model
        from starpose.models.deploy import reparameterize_model

        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = create_model(variant)
            calibrate_batchnorm(model, torch.randn(4, *INPUT_SHAPE[1:]))
        return reparameterize_model(model) if deploy else model.eval()

    return build


def _peer(name: str) -> Callable[[], nn.Module]:
    return lambda: create_peer(name)


MODELS: dict[str, BenchModel] = {}
for _v in ("starpose_t", "starpose_s", "starpose_m", "starpose_l"):
    MODELS[f"{_v}/released"] = BenchModel(f"{_v}/released", "starpose", "released", _starpose(_v, False))
    MODELS[f"{_v}/deploy"] = BenchModel(f"{_v}/deploy", "starpose", "deploy", _starpose(_v, True))
for _p in ("litehrnet_18", "litehrnet_30", "rtmpose_t", "rtmpose_s"):
    MODELS[_p] = BenchModel(_p, "peer", "mmpose", _peer(_p))

DEFAULT_MODELS = ("starpose_t/released", "starpose_t/deploy", "starpose_s/released", "starpose_s/deploy",
                  "litehrnet_18", "rtmpose_t")


def build_model(name: str) -> nn.Module:
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    return MODELS[name].build().eval()


def example_input(seed: int = 0) -> torch.Tensor:
    return torch.randn(*INPUT_SHAPE, generator=torch.Generator().manual_seed(seed))


def _require(module: str, extra: str = "export"):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        raise SystemExit(f"{module} is missing: pip install 'starpose-mobile[{extra}]' ({e})") from e


# --------------------------------------------------------------------------- ExecuTorch


def lower_executorch(model: nn.Module, x: torch.Tensor):
    """``to_edge_transform_and_lower`` with the XNNPACK partitioner (fp32)."""
    exir = _require("executorch.exir")
    xnn = _require("executorch.backends.xnnpack.partition.xnnpack_partitioner")
    return exir.to_edge_transform_and_lower(torch.export.export(model, (x,)),
                                            partitioner=[xnn.XnnpackPartitioner()])


def executorch_delegation(lowered) -> dict[str, Any]:
    """Delegate calls and the compute ops left outside any delegate (the portable path)."""
    ops: collections.Counter[str] = collections.Counter()
    delegates = 0
    for node in lowered.exported_program().graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        if "executorch_call_delegate" in name:
            delegates += 1
        elif "getitem" not in name:
            match = re.match(r"<EdgeOpOverload: ([^>]+)>", name)
            ops[match.group(1) if match else name] += 1
    return {"delegated_subgraphs": delegates, "non_delegated_ops": sum(ops.values()),
            "non_delegated_by_op": dict(ops.most_common())}


# --------------------------------------------------------------------------- LiteRT


def to_litert(model: nn.Module, x: torch.Tensor) -> bytes:
    """fp32 ``.tflite`` bytes via ``litert_torch.convert``."""
    litert_torch = _require("litert_torch")
    return litert_torch.convert(model, (x,)).model_content()


def litert_interpreter(tflite: bytes, threads: int = 1):
    interpreter_mod = _require("ai_edge_litert.interpreter")
    interpreter = interpreter_mod.Interpreter(model_content=tflite, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def litert_delegation(tflite: bytes) -> dict[str, Any]:
    """XNNPACK delegate partitions and the ops the LiteRT interpreter still runs itself.

    After delegation the interpreter lists the original nodes *and* the delegate nodes; the
    execution plan is recovered by walking back from the outputs, taking a tensor's producer to be
    the delegate node when a delegate produces it.
    """
    interpreter = litert_interpreter(tflite)
    ops = interpreter._get_ops_details()  # the public API has no execution plan
    producer: dict[int, dict] = {}
    for op in ops:
        for t in op["outputs"]:
            if op["op_name"] == "DELEGATE" or t not in producer:
                producer[t] = op
    need = [d["index"] for d in interpreter.get_output_details()]
    seen: set[int] = set()
    executed: dict[int, dict] = {}
    while need:
        t = need.pop()
        if t in seen:
            continue
        seen.add(t)
        op = producer.get(t)
        if op is not None and op["index"] not in executed:
            executed[op["index"]] = op
            need.extend(i for i in op["inputs"] if i >= 0)
    names = collections.Counter(op["op_name"] for op in executed.values())
    delegates = names.pop("DELEGATE", 0)
    return {"delegated_subgraphs": delegates, "non_delegated_ops": sum(names.values()),
            "non_delegated_by_op": dict(names.most_common()),
            "ops_before_delegation": sum(1 for op in ops if op["op_name"] != "DELEGATE")}


# --------------------------------------------------------------------------- reporting


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in fields.items()}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(threads: int) -> dict[str, Any]:
    cpu = _lscpu()
    return {
        "cpu_model": cpu.get("Model name", platform.processor()),
        "cpus_online": os.cpu_count(),
        "cores_per_socket": cpu.get("Core(s) per socket"),
        "sockets": cpu.get("Socket(s)"),
        "hypervisor": cpu.get("Hypervisor vendor"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "threads": threads,
        "versions": {d: _version(d) for d in ("torch", "executorch", "litert-torch", "ai-edge-litert", "numpy")},
        "note": "shared CPU: compare ratios within one run, not absolute times across runs",
    }


def portable_paths(obj: Any, home: str | None = None) -> Any:
    """``obj`` with every string that starts with the user's home folder written as ``~/...``:
    committed results name an artifact's place (BlazePose lives in the user cache) without
    naming the machine's account."""
    home = (home or str(Path.home())).rstrip("/") + "/"
    if isinstance(obj, str):
        return "~/" + obj[len(home):] if obj.startswith(home) else obj
    if isinstance(obj, dict):
        return {k: portable_paths(v, home) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable_paths(v, home) for v in obj]
    return obj


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` via a temp file and rename (no half-written results); paths
    under the home folder are written as ``~/...`` (:func:`portable_paths`)."""
    payload = portable_paths(payload)
    return atomic_write_json(path, payload, indent=2)


def machine_slug(machine: dict) -> str:
    cpu = machine.get("cpu_model") or "cpu"
    words = [w for w in re.split(r"[^a-z0-9]+", cpu.lower()) if w and w not in {"r", "tm", "cpu", "processor", "intel", "amd", "core"}]
    return "-".join(words[:3] + [f"{machine.get('cpus_usable')}cpu"])


def paired_ratio(base, other) -> dict[str, float]:
    """``other``'s time over ``base``'s, two rows of one interleaved ``run_bench`` report (same
    thread count): the ratio of the medians and the median of the per-round ratios (each round
    times both, so slow phases of a shared machine cancel)."""
    per_round = [b / a for a, b in zip(base.round_medians_ms, other.round_medians_ms)]
    base_ms, other_ms = base.stats()["median_ms"], other.stats()["median_ms"]
    return {"base_median_ms": round(base_ms, 3), "median_ms": round(other_ms, 3),
            "ratio_of_medians": round(other_ms / base_ms, 3),
            "median_round_ratio": round(statistics.median(per_round), 3)}


def write_bench_results(report, benchmark: str, threads: list[int], kind: str, out: Path | None = None,
                        **fields: Any) -> Path:
    """Save a ``run_bench`` report with the script's own results (``fields``) and the machine, as
    ``out`` or ``results/<date>-<kind>-<machine>.json``."""
    from mobile_export.bench import machine_description

    payload = report.to_dict()
    payload["benchmark"] = benchmark
    payload["date"] = _dt.date.today().isoformat()
    payload["machine"] = machine_description(threads)
    payload.update(fields)
    out = out or RESULTS / f"{payload['date']}-{kind}-{machine_slug(payload['machine'])}.json"
    return write_json(out, payload)
