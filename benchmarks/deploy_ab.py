"""What a deploy-form rewrite bought: the deploy network as it is against the same network with
one or more rewrites undone, timed interleaved in one run (ExecuTorch XNNPACK and LiteRT).

The rewrites this can undo (each computes the same function; golden outputs stay within 1e-4):

- ``bands``: the 7x7 depthwise kernels as symmetric row groups that pad by themselves
  (:class:`~starpose.models.deploy.SymmetricBandDepthwiseConv2d`) -> the earlier consecutive-row
  bands (:class:`~starpose.models.deploy.BandedDepthwiseConv2d`: one pad of the input and a slice
  per band).
- ``eps``: LayerNorm's ``eps`` added as a (1, 1, 1, 1) constant -> as a Python scalar (for which the
  XNNPACK lowering adds a transpose per LayerNorm).

Forms: ``current``; ``eps-scalar`` (eps undone); ``before`` (both undone: the form before them).

    python -m benchmarks.deploy_ab --build-only             # export (minutes; can share the CPU)
    python -m benchmarks.deploy_ab --affinity --threads 1,2 # time them (keep the machine quiet)

Every form is exported from the same random weights (BatchNorm calibrated, ``benchmarks.common``).
Reported per variant, runtime and thread count: each form's median, its ratio to the current
form's median, the median over rounds of the per-round ratio. (Operator counts: ``benchmarks.profile_ops``.)
"""
from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn as nn

from starpose.fileio import atomic_write_bytes

from .common import build_model, example_input, paired_ratio, write_bench_results

VARIANTS = ("starpose_t", "starpose_s")
FORMATS = {"executorch": ".pte", "tflite": ".tflite"}
FORMS = {"current": (), "eps-scalar": ("eps",), "before": ("bands", "eps")}


@torch.no_grad()
def _consecutive_bands(sym: nn.Module) -> nn.Module:
    from starpose.models.deploy import BandedDepthwiseConv2d

    centre = sym.convs[0]
    channels, kw = centre.in_channels, centre.kernel_size[1]
    dh, dw = centre.dilation
    a = centre.kernel_size[0] // 2
    c = a + len(sym.convs) - 1
    full = nn.Conv2d(channels, channels, (2 * c + 1, kw), 1, (dh * c, centre.padding[1]), (dh, dw),
                     groups=channels, bias=centre.bias is not None)
    full.weight.zero_()
    full.weight[:, :, c - a:c + a + 1] = centre.weight
    for j, pair in enumerate(sym.convs[1:], start=a + 1):
        full.weight[:, :, c - j] = pair.weight[:, :, 0]
        full.weight[:, :, c + j] = pair.weight[:, :, 1]
    if centre.bias is not None:
        full.bias.copy_(centre.bias)
    return BandedDepthwiseConv2d(full)


def undo(network: nn.Module, rewrites: tuple[str, ...]) -> nn.Module:
    """A copy of a deploy network with the named rewrites undone (same function)."""
    from starpose.models.deploy import ChannelNorm, SymmetricBandDepthwiseConv2d

    out = copy.deepcopy(network)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if "bands" in rewrites and isinstance(child, SymmetricBandDepthwiseConv2d):
                setattr(parent, name, _consecutive_bands(child))
            if "eps" in rewrites and isinstance(child, ChannelNorm):
                # LayerNorm's eps back to a Python scalar (the add the 4-D constant replaced).
                del child._buffers["eps_tensor"]
                child.eps_tensor = child.eps
    return out


def _file(work: Path, variant: str, form: str, fmt: str) -> Path:
    return work / f"{variant}-{form}{FORMATS[fmt]}"


def _export_one(variant: str, form: str, fmt: str, path: Path) -> None:
    from .common import lower_executorch, to_litert

    torch.set_num_threads(1)
    current = build_model(f"{variant}/deploy")
    model = undo(current, FORMS[form])
    x = example_input()
    with torch.no_grad():
        diff = max(float((a - b).abs().max()) for a, b in zip(model(x), current(x)))
    if diff > 1e-4:
        raise SystemExit(f"{variant} {form}: differs from the current deploy form by {diff:.2e} (> 1e-4)")
    data = lower_executorch(model, x).to_executorch().buffer if fmt == "executorch" else to_litert(model, x)
    atomic_write_bytes(path, data)


def build(work: Path, variants: list[str], formats: list[str], log=print) -> list[Path]:
    """Export every variant x form x format that is not there yet, each in its own process (the
    LiteRT converter and ExecuTorch do not share one process well)."""
    work.mkdir(parents=True, exist_ok=True)
    files = []
    for variant in variants:
        for form in FORMS:
            for fmt in formats:
                path = _file(work, variant, form, fmt)
                files.append(path)
                if path.exists():
                    continue
                log(f"exporting {variant} {form} as {fmt}")
                subprocess.run([sys.executable, "-m", "benchmarks.deploy_ab", "--export-one", variant, form, fmt,
                                str(path)], check=True, cwd=Path(__file__).resolve().parent.parent)
    return files


def main(argv: list[str] | None = None) -> Path | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/deploy-ab"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--affinity", action="store_true", help="pin each benchmark process to the first N cores")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--export-one", nargs=4, metavar=("VARIANT", "FORM", "FORMAT", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="default: results/<date>-deploy-ab-<machine>.json")
    args = parser.parse_args(argv)
    if args.export_one:
        variant, form, fmt, path = args.export_one
        _export_one(variant, form, fmt, Path(path))
        return None

    files = build(args.work, args.variants, args.formats)
    if args.build_only:
        return args.work
    from mobile_export.bench import collect_targets, run_bench

    targets = collect_targets(files)
    for t, f in zip(targets, files):
        t.name = f"{f.stem} [{t.format}]"
        t.precision = "fp32"
    threads = [int(n) for n in args.threads.split(",")]
    report = run_bench(targets, threads=threads, runs=args.runs, rounds=args.rounds, warmup=args.warmup,
                       affinity=args.affinity, progress=print)
    print(report.render(), flush=True)
    rows = {(r.target.name, r.target.format, r.threads): r for r in report.rows if r.status == "ok"}
    ratios = []
    for n in threads:
        for variant in args.variants:
            for t in targets:
                if not t.name.startswith(variant + "-"):
                    continue
                cur = rows.get((f"{variant}-current [{t.format}]", t.format, n))
                row = rows.get((t.name, t.format, n))
                if cur is None or row is None:
                    continue
                pair = paired_ratio(cur, row)
                ratios.append({
                    "variant": variant, "form": t.name[len(variant) + 1:].split(" [")[0], "format": t.format,
                    "threads": n, "median_ms": pair["median_ms"], "ratio_to_current": pair["ratio_of_medians"],
                    "median_round_ratio": pair["median_round_ratio"],
                })
    for r in ratios:
        print(f"{r['variant']:11s} {r['format']:10s} {r['threads']} thr  {r['form']:28s} {r['median_ms']:8.3f} ms  "
              f"x{r['ratio_to_current']:.3f} of current (per round {r['median_round_ratio']:.3f})")
    out = write_bench_results(report, "benchmarks.deploy_ab", threads, "deploy-ab", args.out,
                              forms={k: list(v) for k, v in FORMS.items()}, ratios=ratios, notes={
        "weights": "random with BatchNorm calibrated (benchmarks.common); latency does not depend on the values",
        "input": "deploy network alone, float NCHW 1x3x256x192 in, SimCC out",
        "ratios": "a form's median / the current form's median in the same run (> 1: the current form is faster)",
    })
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
