"""What the shipped bundle costs on top of the network alone, measured in one interleaved run.

The bundle (:class:`mobile_export.bundle.PoseBundle`: uint8 crop in, cast and normalization, the
deploy-form network, SimCC decode, keypoints out) is exported with ``starpose-mobile export``'s
code; the network alone (normalized float NCHW in, SimCC vectors out) as in
``benchmarks.suite``'s ``raw/`` artifacts. All of them are timed by ``mobile_export.bench`` in
**one** group, so the interleaved rounds put the bundle and its network under the same machine
load (``benchmarks.suite`` times them in separate groups, minutes apart).

    python -m benchmarks.bundle_overhead                       # t and s, ExecuTorch + LiteRT, 1 thread
    python -m benchmarks.bundle_overhead --variants starpose_t --formats executorch --dim-order-cast

``--dim-order-cast`` also exports the ExecuTorch bundle the way it was lowered before
2026-12-02 (the uint8 → float cast as ``dim_order_ops._to_dim_order_copy``) and times it in the
same run. ``--tflite-cast`` likewise exports the LiteRT bundle as before 2026-12-03 (the uint8
input's ``CAST`` left on LiteRT's builtin kernels, not rewritten as a delegated ``DEQUANTIZE`` by
``mobile_export.tflite.uint8_input_as_dequantize``). ``--pooled-decode`` also exports both
formats' bundles with the SimCC decode as max pooling and relus inside the delegate
(``PoseBundle(pooled_decode=True)``: bit for bit the argmax decode; the ``.tflite`` then has no op
outside the delegate, the ``.pte`` only its input cast) and times them beside the shipped ones.
Every run also times the cast alone, both ways, on ExecuTorch's portable kernels.

Reported per variant, format and thread count: both medians, the ratio of the medians, and the
median over rounds of the per-round ratio (each round runs the two back to back).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import torch

from .common import paired_ratio, write_bench_results
from .suite import build_raw

VARIANTS = ("starpose_t", "starpose_s")
FORMATS = ("executorch", "tflite")
SUFFIX = {"executorch": ".pte", "tflite": ".tflite"}


def _bundle_name(variant: str, fmt: str) -> str:
    return f"{variant}_xnnpack_fp32.pte" if fmt == "executorch" else f"{variant}_fp32.tflite"


def _export(model, info, fmt: str, out: Path) -> None:
    """``starpose-mobile export --format FMT --precision fp32`` (ExecuTorch: the XNNPACK .pte only)."""
    from mobile_export.base import ExportOptions
    from mobile_export.executorch import export_executorch
    from mobile_export.export import export_formats
    from mobile_export.formats import FORMATS as EXPORTERS
    from mobile_export.source import deploy_network

    if fmt == "executorch":
        export_executorch(deploy_network(model), out, ExportOptions(precision="fp32", weights=info),
                          backends=("xnnpack",))
    else:
        export_formats(model, info, [EXPORTERS[fmt]], out, precision="fp32")


def _legacy_name(variant: str, fmt: str) -> str:
    return f"{variant}_xnnpack_fp32_dimordercast.pte" if fmt == "executorch" else f"{variant}_fp32_inputcast.tflite"


def _pooled_name(variant: str, fmt: str) -> str:
    return f"{variant}_xnnpack_fp32_pooleddecode.pte" if fmt == "executorch" else f"{variant}_fp32_pooleddecode.tflite"


def build_bundles(work: Path, variants: list[str], formats: list[str], dim_order_cast: bool, log=print,
                  tflite_cast: bool = False, pooled_decode: bool = False) -> None:
    import functools

    import mobile_export.bundle as bundle_module
    import mobile_export.executorch as et_export
    from mobile_export.source import resolve_model

    out = work / "bundle"
    for variant in variants:
        for fmt in formats:
            if (out / _bundle_name(variant, fmt)).exists():
                continue
            log(f"bundle: exporting {variant} {fmt}")
            model, info = resolve_model(variant, "random")
            _export(model, info, fmt, out)
        if dim_order_cast and "executorch" in formats:
            from executorch.exir import EdgeCompileConfig

            # the default edge config: casts as _to_dim_order_copy
            _export_legacy(work, variant, "executorch", et_export, "xnnpack_edge_config", EdgeCompileConfig,
                           "the dim-order cast", log)
        if tflite_cast and "tflite" in formats:
            import mobile_export.tflite as tfl_export

            _export_legacy(work, variant, "tflite", tfl_export, "uint8_input_as_dequantize", lambda data: data,
                           "the input CAST", log)
        if pooled_decode:
            # the exporters look PoseBundle up in mobile_export.bundle when they run
            pooled = functools.partial(bundle_module.PoseBundle, pooled_decode=True)
            for fmt in formats:
                _export_legacy(work, variant, fmt, bundle_module, "PoseBundle", pooled, "the pooled decode", log,
                               name=_pooled_name(variant, fmt))


def _export_legacy(work: Path, variant: str, fmt: str, module, attr: str, replacement, what: str, log,
                   name: str | None = None) -> None:
    """Export ``variant``'s ``fmt`` bundle with ``module.attr`` swapped for ``replacement`` (the way
    it was lowered before, or an alternative), as ``name`` (default ``_legacy_name``); skipped when
    that file exists."""
    from mobile_export.source import resolve_model

    legacy = work / "bundle" / (name or _legacy_name(variant, fmt))
    if legacy.exists():
        return
    log(f"bundle: exporting {variant} {fmt} with {what}")
    model, info = resolve_model(variant, "random")
    tmp = work / "legacy-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    current = getattr(module, attr)
    setattr(module, attr, replacement)
    try:
        _export(model, info, fmt, tmp)
    finally:
        setattr(module, attr, current)
    for suffix in ("", ".json"):
        os.replace(tmp / f"{_bundle_name(variant, fmt)}{suffix}", f"{legacy}{suffix}")
    shutil.rmtree(tmp, ignore_errors=True)


def time_cast(runs: int = 200) -> dict[str, float]:
    """Median ms of the 1x256x192x3 uint8 → float32 cast alone on ExecuTorch's portable kernels,
    as ``_to_dim_order_copy`` (the default edge dialect) and as ``aten._to_copy``."""
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    class Cast(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return image.to(torch.float32)

    _unsafe_reset_threadpool(1)
    image = torch.randint(0, 256, (1, 256, 192, 3), dtype=torch.uint8)
    methods = {}
    for name, skip in (("_to_dim_order_copy", False), ("_to_copy", True)):
        ep = torch.export.export(Cast(), (image,), strict=False)
        buffer = to_edge_transform_and_lower(ep, compile_config=EdgeCompileConfig(_skip_dim_order=skip)) \
            .to_executorch().buffer
        program = Runtime.get().load_program(buffer)
        methods[name] = (program, program.load_method("forward"))
    times: dict[str, list[float]] = {name: [] for name in methods}
    for r in range(10):  # interleaved rounds
        for name, (_, method) in (methods.items() if r % 2 == 0 else reversed(list(methods.items()))):
            method.execute([image])
            for _ in range(runs // 10):
                t0 = time.perf_counter()
                method.execute([image])
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: round(statistics.median(v), 4) for name, v in times.items()}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/bundle-overhead"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--dim-order-cast", action="store_true",
                        help="also time the ExecuTorch bundle lowered with the dim-order cast (as before 2026-12-02)")
    parser.add_argument("--tflite-cast", action="store_true",
                        help="also time the LiteRT bundle with its uint8 input CAST outside the delegate (as before)")
    parser.add_argument("--pooled-decode", action="store_true",
                        help="also time both formats' bundles with the SimCC decode inside the delegate")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--affinity", action="store_true", help="pin each benchmark process to the first N cores")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="default: results/<date>-bundle-overhead-<machine>.json")
    args = parser.parse_args(argv)

    from mobile_export.bench import collect_targets, run_bench

    torch.set_num_threads(1)
    torch.manual_seed(0)
    raw = build_raw(args.work, [f"{v}/deploy" for v in args.variants], args.formats)
    build_bundles(args.work, args.variants, args.formats, args.dim_order_cast, tflite_cast=args.tflite_cast,
                  pooled_decode=args.pooled_decode)
    if args.build_only:
        return args.work
    targets = []
    for t in collect_targets([args.work / "raw"]):
        entry = raw.get(Path(t.path).name, {})
        if entry.get("model") in {f"{v}/deploy" for v in args.variants} and entry.get("format") in args.formats:
            t.name = f"{entry['model']} [{t.format}]"
            t.precision = "fp32"
            targets.append(t)
    bundle_files = [args.work / "bundle" / _bundle_name(v, f) for v in args.variants for f in args.formats]
    if args.dim_order_cast and "executorch" in args.formats:
        bundle_files += [args.work / "bundle" / _legacy_name(v, "executorch") for v in args.variants]
    if args.tflite_cast and "tflite" in args.formats:
        bundle_files += [args.work / "bundle" / _legacy_name(v, "tflite") for v in args.variants]
    if args.pooled_decode:
        bundle_files += [args.work / "bundle" / _pooled_name(v, f) for v in args.variants for f in args.formats]
    targets += collect_targets(bundle_files)
    threads = [int(n) for n in args.threads.split(",")]
    report = run_bench(targets, threads=threads, runs=args.runs, rounds=args.rounds, warmup=args.warmup,
                       affinity=args.affinity, progress=print)
    print(report.render(), flush=True)

    rows = {(r.target.name, r.threads): r for r in report.rows if r.status == "ok"}
    overhead = []
    for n in threads:
        for variant in args.variants:
            for fmt in args.formats:
                net = rows.get((f"{variant}/deploy [{fmt}]", n))
                names = [_bundle_name(variant, fmt)]
                if (fmt == "executorch" and args.dim_order_cast) or (fmt == "tflite" and args.tflite_cast):
                    names.append(_legacy_name(variant, fmt))
                if args.pooled_decode:
                    names.append(_pooled_name(variant, fmt))
                for name in names:
                    bundle = rows.get((name, n))
                    if net is None or bundle is None:
                        continue
                    pair = paired_ratio(net, bundle)
                    overhead.append({
                        "variant": variant, "format": fmt, "threads": n, "bundle": name,
                        "network_median_ms": pair["base_median_ms"], "bundle_median_ms": pair["median_ms"],
                        "ratio_of_medians": pair["ratio_of_medians"], "median_round_ratio": pair["median_round_ratio"],
                    })
    for o in overhead:
        print(f"{o['variant']:11s} {o['format']:10s} {o['threads']} thr  {o['bundle']:40s} "
              f"bundle/network: {o['ratio_of_medians']:.3f} (medians)  {o['median_round_ratio']:.3f} (per round)")
    cast = time_cast() if "executorch" in args.formats else None
    if cast:
        print("uint8 -> float32 cast alone (ExecuTorch portable, 1 thread, ms):", cast)
    out = write_bench_results(report, "benchmarks.bundle_overhead", threads, "bundle-overhead", args.out,
                              bundle_over_network=overhead, cast_alone_ms=cast, notes={
        "weights": "network alone: random with BatchNorm calibrated (benchmarks.common); bundle: "
                   "--weights random (latency does not depend on the values)",
        "network": "deploy form alone, float NCHW 1x3x256x192 in, SimCC out",
        "bundle": "as shipped: uint8 NHWC crop in, keypoints + scores out",
    })
    print(f"results: {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
