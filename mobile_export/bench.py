"""``bench``: latency of models in their real runtimes, on this machine, side by side.

What is timed is what an app calls: one uint8 RGB person crop in, keypoints out (the bundled pre-
and post-processing included). Targets are exported artifacts (``.pte``, ``.tflite``, ``.onnx``,
``.pt``/``.ptl``, ``.mlpackage``), export directories (every model their ``manifest.json``
lists), and the eager PyTorch bundle of a variant. Artifacts without StarPose metadata (another
project's ``.tflite``, ``.onnx`` or ``.pte``) are run on inputs of their declared shapes.

How it measures (so that numbers from a shared or throttling machine still compare):

- every (target, thread count) runs in **its own process**: ExecuTorch's XNNPACK pool is
  process-wide and three runtimes' pools in one process distort multi-thread numbers; the
  process's peak resident memory is then the target's own;
- thread counts are fixed in every runtime (``torch.set_num_threads``,
  ``_unsafe_reset_threadpool`` before the program loads, LiteRT ``num_threads``, ONNX Runtime
  intra-op threads, ``OMP_NUM_THREADS``), optionally pinned to cores (``affinity=True``);
- after a warm-up, the timed runs are split into rounds and the targets of one thread count take
  turns round by round (order reversed every other round), one process running at a time, so
  that drift in machine load hits them alike;
- reported: median, p10, p90 over all timed runs, each round's median, the ratio of each median
  to the baseline target's in the same thread count, load time, peak memory, file size, export
  time (from the manifest), parameters and MACs (from the variant in the metadata).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from starpose.fileio import atomic_write_json
from starpose.sample_data import SAMPLES_DIR  # torch-free at import (so are starpose's network names)

__all__ = ["BenchTarget", "BenchRow", "BenchReport", "collect_targets", "eager_target", "run_bench",
           "machine_description"]

EAGER = "eager"
# format name → its module's open_runner (the modules FORMATS is built from; imported one at a time)
FORMAT_MODULES = ("executorch", "coreml", "tflite", "torchscript", "onnx")
# a packaged sample photo (``starpose.sample_data``, which imports no torch)
SAMPLE_IMAGE = SAMPLES_DIR / "astronaut.jpg"


@dataclass
class BenchTarget:
    """One thing to time. ``path`` is None for the eager bundle (``variant`` + ``weights``)."""

    name: str
    format: str  # eager | executorch | tflite | onnx | torchscript | coreml
    path: str | None = None
    variant: str | None = None
    weights: str | None = None
    precision: str | None = None
    backend: str | None = None
    size_bytes: int | None = None
    export_seconds: float | None = None
    has_metadata: bool = False
    kind: str = "pose"  # pose | detector (the bundled person detector, mobile_export.detector)


@dataclass
class BenchRow:
    target: BenchTarget
    threads: int
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    times_ms: list[float] = field(default_factory=list)
    round_medians_ms: list[float] = field(default_factory=list)
    load_seconds: float | None = None
    peak_rss_mb: float | None = None
    params: int | None = None
    macs: float | None = None
    ratio: float | None = None
    process: dict[str, Any] = field(default_factory=dict)  # the worker's pid and thread settings

    def stats(self) -> dict[str, float | None]:
        if not self.times_ms:
            return {"median_ms": None, "p10_ms": None, "p90_ms": None}
        t = np.asarray(self.times_ms)
        return {"median_ms": float(np.median(t)), "p10_ms": float(np.percentile(t, 10)),
                "p90_ms": float(np.percentile(t, 90))}


# --------------------------------------------------------------------------- targets


def eager_target(variant: str = "starpose_t", weights: str = "default") -> BenchTarget:
    return BenchTarget(name=f"{variant} eager", format=EAGER, variant=variant, weights=weights, precision="fp32",
                       backend="pytorch")


def _target_for_file(path: Path, manifest_entry: dict[str, Any] | None) -> BenchTarget:
    from .formats import exporter_for
    from .manifest import describe_path
    from .metadata import MetadataError, read_metadata_file, sidecar_path

    exporter = exporter_for(path)
    if exporter is None:
        raise ValueError(f"{path}: not an artifact bench knows (.pte, .tflite, .onnx, .pt, .ptl, .mlpackage)")
    from .detector import bench_fields, is_detector_artifact

    if is_detector_artifact(path):
        try:
            fields = bench_fields(path)
        except MetadataError as e:
            raise ValueError(f"{path}: its metadata sidecar is unreadable ({e})") from e
        size = (manifest_entry or {}).get("size") or describe_path(path)["size"]
        return BenchTarget(name=path.name, format=exporter.name, path=str(path), size_bytes=int(size),
                           export_seconds=(manifest_entry or {}).get("export_seconds"), kind="detector", **fields)
    meta = None
    side = sidecar_path(path)
    if side.is_file():
        try:
            meta = read_metadata_file(side)
        except MetadataError as e:
            raise ValueError(f"{path}: its metadata sidecar is unreadable ({e})") from e
    size = (manifest_entry or {}).get("size") or describe_path(path)["size"]
    return BenchTarget(
        name=path.name, format=exporter.name, path=str(path),
        variant=meta["model"]["variant"] if meta else None,
        precision=meta.get("precision") if meta else None,
        backend=meta.get("backend") if meta else None,
        size_bytes=int(size), export_seconds=(manifest_entry or {}).get("export_seconds"),
        has_metadata=meta is not None,
    )


def collect_targets(paths: Iterable[str | Path]) -> list[BenchTarget]:
    """Artifacts and export directories → targets. A directory contributes every model its
    manifest lists (or, without a manifest, every file with an artifact suffix)."""
    from .formats import exporter_for
    from .manifest import ManifestError, read_manifest

    targets: list[BenchTarget] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such artifact or directory")
        if path.is_dir() and exporter_for(path) is None:
            try:
                manifest = read_manifest(path)
            except ManifestError as e:
                raise ValueError(str(e)) from e
            if manifest is not None:
                entries = {n: e for n, e in manifest["artifacts"].items() if e.get("role") == "model"}
                targets += [_target_for_file(path / n, e) for n, e in entries.items()]
            else:
                found = sorted(p for p in path.iterdir() if exporter_for(p) is not None and not p.name.startswith("."))
                targets += [_target_for_file(p, None) for p in found]
            if not targets:
                raise ValueError(f"{path}: no artifacts in this directory")
        else:
            entry = None
            try:
                manifest = read_manifest(path.parent)
            except ManifestError:
                manifest = None
            if manifest is not None:
                entry = manifest["artifacts"].get(path.name)
            targets.append(_target_for_file(path, entry))
    return targets


# --------------------------------------------------------------------------- the worker process


def _sample_crop(h: int, w: int) -> np.ndarray:
    """A real person crop at the input size: the bundled astronaut photo, whole frame resized."""
    import cv2

    path = SAMPLE_IMAGE
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"{path}: the packaged sample image is missing or unreadable")
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA))


def _open_with_metadata(target: BenchTarget) -> Callable[[], Any]:
    """A target with StarPose metadata (or the eager bundle) → a no-argument call of one inference.
    Only the target's own format module is imported: TFLite and ONNX workers never load torch,
    so their peak memory is the runtime's and the model's."""
    import importlib

    from .metadata import read_metadata_file, sidecar_path

    if target.format == EAGER:
        import torch

        from .bundle import PoseBundle
        from .source import deploy_network, resolve_model

        model, _ = resolve_model(target.variant or "starpose_t", target.weights or "default")
        bundle = PoseBundle(deploy_network(model), model.spec).eval()
        h, w = model.spec.input_h, model.spec.input_w
        image = torch.from_numpy(_sample_crop(h, w)[None])

        def run() -> Any:
            with torch.inference_mode():
                return bundle(image)

        return run
    path = Path(target.path)
    if target.kind == "detector":  # a letterboxed sample frame in, boxes and scores out
        from .detector import open_detector_call

        return open_detector_call(path)
    meta = read_metadata_file(sidecar_path(path))
    if target.format not in FORMAT_MODULES:
        raise ValueError(f"{path}: unknown artifact format {target.format!r}")
    runner = importlib.import_module(f"mobile_export.{target.format}").open_runner(path, meta)
    crop = _sample_crop(meta["input"]["height"], meta["input"]["width"])
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32) if meta["affine_input"]["present"] else None
    return lambda: runner(crop, matrix)


def _random_input(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(np.dtype(dtype))
        return rng.integers(max(info.min, 0), min(info.max, 255) + 1, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _open_foreign(target: BenchTarget) -> Callable[[], Any]:
    """An artifact without StarPose metadata: inputs of its declared shapes (seeded noise)."""
    from .base import runtime_threads

    path = Path(target.path)
    rng = np.random.default_rng(0)
    if target.format == "tflite":
        from .tflite import _interpreter

        it = _interpreter(path)
        for d in it.get_input_details():
            it.set_tensor(d["index"], _random_input(tuple(d["shape"]), np.dtype(d["dtype"]).name, rng))
        outputs = [d["index"] for d in it.get_output_details()]

        def run() -> Any:
            it.invoke()
            return [it.get_tensor(i) for i in outputs]

        return run
    if target.format == "onnx":
        from .onnx import _ORT_TYPES, _session

        session = _session(path)
        feeds = {a.name: _random_input(tuple(d if isinstance(d, int) else 1 for d in a.shape),
                                       _ORT_TYPES.get(a.type, "float32"), rng) for a in session.get_inputs()}
        return lambda: session.run(None, feeds)
    if target.format == "executorch":
        import torch

        from .executorch import _load_program, _tensor_infos

        program = _load_program(path)
        method = program.load_method("forward")
        infos = _tensor_infos(program.metadata("forward"), "input")
        inputs = [torch.from_numpy(_random_input(i.shape, i.dtype, rng)) for i in infos]
        run = lambda: method.execute(inputs)  # noqa: E731
        run.keep = (program, method)  # type: ignore[attr-defined]  # the Program owns the Method
        return run
    raise ValueError(
        f"{path}: a {target.format} artifact without its metadata sidecar cannot be benchmarked "
        f"(its input shapes are unknown; threads={runtime_threads()})"
    )


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory. On Linux ``VmHWM`` (reset by exec, unlike
    ``ru_maxrss``, which a child inherits from the parent it was forked from)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)


def _set_threads(threads: int, fmt: str, affinity: bool) -> None:
    if affinity and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[:threads])
    from .base import set_runtime_threads

    set_runtime_threads(threads)
    if fmt in (EAGER, "torchscript", "executorch"):
        import torch

        torch.set_num_threads(threads)
    if fmt == "executorch":
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

        _unsafe_reset_threadpool(threads)  # before any program is loaded


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def worker_main(argv: list[str]) -> int:
    """``python -m mobile_export.bench --worker TARGET_JSON THREADS AFFINITY``: load, then answer
    ``{"run": n}`` with n timings in ms and ``{"quit": true}`` with the peak memory."""
    target = BenchTarget(**json.loads(argv[0]))
    threads, affinity = int(argv[1]), argv[2] == "1"
    # Anything a runtime prints must not reach the protocol channel.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = protocol
    try:
        _set_threads(threads, target.format, affinity)
        start = time.perf_counter()
        run = _open_with_metadata(target) if (target.has_metadata or target.format == EAGER) else _open_foreign(target)
        run()
        load = time.perf_counter() - start
    except Exception as e:  # noqa: BLE001 - reported to the parent as this target's row
        from .base import RuntimeUnavailable

        _reply({"status": "skipped" if isinstance(e, RuntimeUnavailable) else "failed",
                "reason": f"{type(e).__name__}: {e}"})
        return 0
    torch = sys.modules.get("torch")
    _reply({"status": "ok", "load_seconds": load, "pid": os.getpid(),
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "torch_loaded": torch is not None})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            _reply({"peak_rss_mb": _peak_rss_mb()})
            return 0
        times = []
        for _ in range(int(cmd["run"])):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1e3)
        _reply({"times_ms": times})
    return 0


# --------------------------------------------------------------------------- the parent


class _Worker:
    def __init__(self, target: BenchTarget, threads: int, affinity: bool) -> None:
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mobile_export.bench", "--worker", json.dumps(asdict(target)), str(threads),
             "1" if affinity else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )

    def ask(self, cmd: dict[str, Any] | None = None) -> dict[str, Any]:
        if cmd is not None:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()[-2000:]
            raise RuntimeError(f"the benchmark process exited (code {self.proc.wait()}): {err.strip()}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


_MODEL_STATS: dict[str, tuple[int, float]] = {}


def model_stats(variant: str) -> tuple[int, float]:
    """Parameters and multiply-accumulates (FLOPs / 2 at the variant's input size)."""
    if variant not in _MODEL_STATS:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        from starpose.models import create_model

        model = create_model(variant).eval()
        x = torch.zeros(1, 3, model.spec.input_h, model.spec.input_w)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        _MODEL_STATS[variant] = (sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2)
    return _MODEL_STATS[variant]


@dataclass
class BenchReport:
    rows: list[BenchRow]
    runs: int
    rounds: int
    warmup: int
    affinity: bool
    baseline: str | None
    machine: dict[str, Any]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = []
        for r in self.rows:
            d = {"target": asdict(r.target), "threads": r.threads, "status": r.status, "reason": r.reason,
                 **{k: (None if v is None else round(v, 3)) for k, v in r.stats().items()},
                 "ratio_to_baseline": None if r.ratio is None else round(r.ratio, 3),
                 "round_medians_ms": [round(m, 3) for m in r.round_medians_ms], "runs": len(r.times_ms),
                 "load_seconds": r.load_seconds, "peak_rss_mb": r.peak_rss_mb, "params": r.params, "macs": r.macs,
                 "process": r.process}
            out.append(d)
        return {"benchmark": "starpose-mobile bench", "runs": self.runs, "rounds": self.rounds,
                "warmup": self.warmup, "affinity": self.affinity, "baseline": self.baseline,
                "seconds": round(self.seconds, 1), "machine": self.machine, "rows": out}

    def write_json(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict(), indent=2)

    def render(self) -> str:
        head = (f"{'target':38s} {'runtime':11s} {'prec':5s} {'thr':>3s} {'median':>8s} {'p10':>8s} {'p90':>8s} "
                f"{'ratio':>6s} {'size MB':>8s} {'peak MB':>8s} {'load s':>6s} {'export s':>8s} {'GMACs':>6s}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            t = r.target
            size = f"{t.size_bytes / 1e6:8.2f}" if t.size_bytes else f"{'':8s}"
            exp = f"{t.export_seconds:8.1f}" if t.export_seconds is not None else f"{'':8s}"
            macs = f"{r.macs / 1e9:6.3f}" if r.macs else f"{'':6s}"
            if r.status != "ok":
                lines.append(f"{t.name[:38]:38s} {_runtime_name(t):11s} {str(t.precision or ''):5s} {r.threads:3d} "
                             f"{r.status}: {r.reason}")
                continue
            s = r.stats()
            ratio = f"{r.ratio:6.2f}" if r.ratio is not None else f"{'':6s}"
            peak = f"{r.peak_rss_mb:8.0f}" if r.peak_rss_mb else f"{'':8s}"
            lines.append(
                f"{t.name[:38]:38s} {_runtime_name(t):11s} {str(t.precision or ''):5s} {r.threads:3d} "
                f"{s['median_ms']:8.2f} {s['p10_ms']:8.2f} {s['p90_ms']:8.2f} {ratio} {size} {peak} "
                f"{r.load_seconds:6.2f} {exp} {macs}"
            )
        base_name = self.baseline or (self.rows[0].target.name if self.rows else "the first target")
        failed = sorted({r.threads for r in self.rows if r.target.name == base_name and r.status != "ok"})
        no_ratio = (f" (none at {','.join(map(str, failed))} thread(s): {base_name} did not run there)"
                    if failed else "")
        lines.append(f"ms per inference (uint8 crop in, keypoints out); ratio = median / median of "
                     f"{base_name} at the same thread count{no_ratio}; {self.runs} timed runs in "
                     f"{self.rounds} interleaved rounds after {self.warmup} warm-up runs; {self.machine.get('cpu_model')}")
        return "\n".join(lines)


def _runtime_name(t: BenchTarget) -> str:
    return {"eager": "pytorch", "executorch": f"et-{(t.backend or 'xnnpack').lower()}", "tflite": "litert",
            "onnx": "onnxruntime", "torchscript": "torchscript", "coreml": "coreml"}.get(t.format, t.format)


def machine_description(threads: list[int] | None = None) -> dict[str, Any]:
    """CPU, OS, Python and runtime versions: stored with every result."""
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("starpose-mobile", "torch", "executorch", "ai-edge-litert", "litert-torch", "onnxruntime",
                 "coremltools", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": cpu, "machine": platform.machine(), "cpus_usable": usable, "platform": platform.platform(),
            "python": platform.python_version(), "threads": threads, "versions": versions}


def run_bench(
    targets: list[BenchTarget],
    *,
    threads: Iterable[int] = (1,),
    runs: int = 50,
    rounds: int = 5,
    warmup: int = 5,
    affinity: bool = False,
    baseline: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> BenchReport:
    """Time every target at every thread count (see the module docstring for the method)."""
    threads = [int(t) for t in threads]
    if not targets:
        raise ValueError("nothing to benchmark")
    if any(t < 1 for t in threads):
        raise ValueError(f"thread counts must be >= 1, got {threads}")
    if runs < 1 or rounds < 1 or warmup < 0:
        raise ValueError("runs and rounds must be >= 1 and warmup >= 0")
    rounds = min(rounds, runs)
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError(f"two targets share a name: {names}")
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not one of the targets: {', '.join(names)}")
    start = time.perf_counter()
    rows: list[BenchRow] = []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the core install
        tqdm = None
    per_round = [runs // rounds + (1 if i < runs % rounds else 0) for i in range(rounds)]
    total = len(threads) * len(targets) * (rounds + 1)
    bar = tqdm(total=total, desc="bench", unit="step", disable=tqdm is None, file=sys.stderr) if tqdm else None
    try:
        for n in threads:
            group = [BenchRow(t, n) for t in targets]
            workers: dict[int, _Worker] = {}
            try:
                for i, row in enumerate(group):
                    if bar:
                        bar.set_postfix_str(f"{n} thr: loading {row.target.name}")
                    w = _Worker(row.target, n, affinity)
                    hello = w.ask()
                    if hello["status"] != "ok":
                        row.status, row.reason = hello["status"], hello["reason"]
                        w.close()
                        progress(f"{row.target.name}: {row.status}: {row.reason}")
                    else:
                        row.load_seconds = round(hello["load_seconds"], 3)
                        row.process = {"pid": hello["pid"], "torch_threads": hello["torch_threads"],
                                       "torch_loaded": hello["torch_loaded"]}
                        workers[i] = w
                        if warmup:
                            w.ask({"run": warmup})
                    if bar:
                        bar.update(1)
                for rnd in range(rounds):
                    order = list(workers) if rnd % 2 == 0 else list(workers)[::-1]
                    for i in order:
                        if bar:
                            bar.set_postfix_str(f"{n} thr: round {rnd + 1}/{rounds} {group[i].target.name}")
                        times = workers[i].ask({"run": per_round[rnd]})["times_ms"]
                        group[i].times_ms += times
                        group[i].round_medians_ms.append(float(np.median(times)))
                    if bar:
                        bar.update(len(group))
                for i, w in workers.items():
                    group[i].peak_rss_mb = w.ask({"quit": True})["peak_rss_mb"]
            finally:
                for w in workers.values():
                    w.close()
            base_row = next((r for r in group if r.target.name == (baseline or names[0])), None)
            base = base_row.stats()["median_ms"] if base_row else None
            for row in group:
                med = row.stats()["median_ms"]
                row.ratio = med / base if (med is not None and base) else None
                if row.target.variant and row.target.variant.startswith("starpose"):
                    row.params, row.macs = model_stats(row.target.variant)
            rows += group
    finally:
        if bar:
            bar.close()
    return BenchReport(rows, runs, rounds, warmup, affinity, baseline or names[0], machine_description(threads),
                       time.perf_counter() - start)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit("usage: starpose-mobile bench ARTIFACTS... (this module's entry point is the worker)")
