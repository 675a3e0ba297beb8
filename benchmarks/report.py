"""Render a ``benchmarks.suite`` results file as ``docs/BENCHMARKS.md`` with PNG charts.

    python -m benchmarks.report benchmarks/results/<date>-<machine>.json [--docs docs]

Every number in the page comes from the one results file: ratios are taken within that run
(same runtime, same thread count), so they compare models fairly even on a shared machine.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RUNTIMES = (("executorch", "ExecuTorch XNNPACK"), ("tflite", "LiteRT"), ("onnx", "ONNX Runtime"))
ORDER = ("starpose_t/released", "starpose_t/deploy", "starpose_s/released", "starpose_s/deploy",
         "litehrnet_18", "litehrnet_30", "rtmpose_t", "rtmpose_s")
LABEL = {"starpose_t/released": "StarPose-t (released graph)", "starpose_t/deploy": "StarPose-t (deploy form)",
         "starpose_s/released": "StarPose-s (released graph)", "starpose_s/deploy": "StarPose-s (deploy form)",
         "litehrnet_18": "Lite-HRNet-18", "litehrnet_30": "Lite-HRNet-30", "rtmpose_t": "RTMPose-t",
         "rtmpose_s": "RTMPose-s", "blazepose_lite": "BlazePose lite (256x256)",
         "blazepose_full": "BlazePose full (256x256)", "blazepose_heavy": "BlazePose heavy (256x256)"}
REFERENCE = "litehrnet_18"


class Results:
    """Index of a results file: (model, runtime, threads) → median ms for the raw networks and
    BlazePose, (variant, format, precision, threads) → row for the shipped bundles."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.raw: dict[tuple[str, str, int], dict] = {}
        self.bundle: dict[tuple[str, str, str, int], dict] = {}
        for row in doc["rows"]:
            t = row["target"]
            name = t["name"]
            if name.endswith("]") and " [" in name:
                model = name.rsplit(" [", 1)[0]
                self.raw[(model, t["format"], row["threads"])] = row
            elif t.get("variant"):
                self.bundle[(t["variant"], t["format"], t.get("precision") or "", row["threads"])] = row
                if t.get("kind") == "detector":
                    self.detector_variant = t["variant"]
        self.threads = sorted({r["threads"] for r in doc["rows"]})

    detector_variant: str | None = None  # the bundled person detector's name, when it was timed

    def ms(self, model: str, runtime: str, threads: int) -> float | None:
        row = self.raw.get((model, runtime, threads))
        return row["median_ms"] if row and row["status"] == "ok" else None

    def status(self, model: str, runtime: str, threads: int) -> str:
        row = self.raw.get((model, runtime, threads))
        if row is None:
            return "not built"
        return row["status"] if row["status"] != "ok" else "ok"

    def ratio(self, model: str, runtime: str, threads: int, ref: str = REFERENCE) -> float | None:
        a, b = self.ms(model, runtime, threads), self.ms(ref, runtime, threads)
        return a / b if a is not None and b else None

    def bundle_ms(self, variant: str, fmt: str, precision: str, threads: int) -> float | None:
        row = self.bundle.get((variant, fmt, precision, threads))
        return row["median_ms"] if row and row["status"] == "ok" else None

    def bundle_overhead(self, variant: str, fmt: str, threads: int) -> float | None:
        """The fp32 bundle (uint8 crop in, keypoints out) over its network alone (deploy form), same
        runtime and thread count."""
        a, b = self.bundle_ms(variant, fmt, "fp32", threads), self.ms(f"{variant}/deploy", fmt, threads)
        return a / b if a is not None and b else None


def _fmt(ms: float | None, ratio: float | None = None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.1f}" + (f" ({ratio:.2f})" if ratio is not None else "")


def goals(r: Results) -> list[tuple[str, str, bool | None]]:
    """(goal, measured, holds) for the benchmarks and quantization issues' latency goals."""
    out: list[tuple[str, str, bool | None]] = []

    def check(goal: str, value: float | None, limit: float, unit: str = "x", le: bool = True) -> None:
        if value is None:
            out.append((goal, "not measured", None))
            return
        out.append((goal, f"{value:.2f}{unit}", value <= limit if le else value >= limit))

    for rt, name in RUNTIMES[:2]:
        check(f"StarPose-t fp32 ≤ 0.5x (ET) / 0.7x (LiteRT) Lite-HRNet-18, {name}, 1 thread",
              r.ratio("starpose_t/deploy", rt, 1), 0.5 if rt == "executorch" else 0.7)
        check(f"StarPose-t fp32 ≤ 1.0x RTMPose-t, {name}, 1 thread",
              r.ratio("starpose_t/deploy", rt, 1, "rtmpose_t"), 1.0)
        check(f"StarPose-s fp32 ≤ 0.8x Lite-HRNet-18, {name}, 1 thread", r.ratio("starpose_s/deploy", rt, 1), 0.8)
    for v in ("starpose_t", "starpose_s"):
        fp, q = r.bundle_ms(v, "executorch", "fp32", 1), r.bundle_ms(v, "executorch", "int8", 1)
        check(f"{v} int8 .pte ≤ 0.5x its fp32 .pte (1 thread)", q / fp if fp and q else None, 0.5)
    lite = r.ms("blazepose_lite", "tflite", 1)
    q = r.bundle_ms("starpose_t", "executorch", "int8", 1)
    check("StarPose-t int8 faster than BlazePose-lite fp32 (1 thread), ratio", q / lite if q and lite else None,
          1.0 - 1e-9)
    gemm = r.doc.get("gemm_gmacs_per_s", {}).get("1")
    stats = r.doc.get("model_stats", {}).get("starpose_s/deploy")
    s_ms = r.ms("starpose_s/deploy", "executorch", 1)
    frac = (stats["macs"] / (s_ms / 1e3) / 1e9) / gemm if gemm and stats and s_ms else None
    check("StarPose-s fp32 reaches ≥ 30% of the 1-thread GEMM rate (ExecuTorch)",
          None if frac is None else frac * 100, 30.0, "%", le=False)
    if 2 in r.threads:
        for rt, name in RUNTIMES[:2]:
            one, two = r.ms("starpose_s/deploy", rt, 1), r.ms("starpose_s/deploy", rt, 2)
            check(f"StarPose-s 2 threads ≥ 1.6x faster than 1, {name}", one / two if one and two else None, 1.6,
                  le=False)
    # The deploy-speed issue ("ahead of RTMPose-t, not level with it").
    for rt, name in RUNTIMES[:2]:
        check(f"StarPose-t fp32 ≤ 0.75x RTMPose-t, {name}, 1 thread",
              r.ratio("starpose_t/deploy", rt, 1, "rtmpose_t"), 0.75)
    for v in ("starpose_t", "starpose_s"):
        for rt, name in RUNTIMES[:2]:
            for n in r.threads:
                check(f"{v} fp32 bundle ≤ 1.05x the network alone, {name}, {n} thread{'s' if n > 1 else ''}",
                      r.bundle_overhead(v, rt, n), 1.05)
    if 2 in r.threads:
        for v, label in (("starpose_t", "StarPose-t"), ("starpose_s", "StarPose-s")):
            for rt, name in RUNTIMES[:2]:
                one, two = r.ms(f"{v}/deploy", rt, 1), r.ms(f"{v}/deploy", rt, 2)
                check(f"{label} 2 threads ≥ 1.5x faster than 1, {name}", one / two if one and two else None, 1.5,
                      le=False)
    check("StarPose-s fp32 ≤ 0.8x Lite-HRNet-18, ExecuTorch XNNPACK and LiteRT, 1 thread (the larger)",
          None if any(r.ratio("starpose_s/deploy", rt, 1) is None for rt, _ in RUNTIMES[:2])
          else max(r.ratio("starpose_s/deploy", rt, 1) for rt, _ in RUNTIMES[:2]), 0.8)
    check("StarPose-s fp32 reaches ≥ 45% of the 1-thread GEMM rate (ExecuTorch)",
          None if frac is None else frac * 100, 45.0, "%", le=False)
    # The bundled person detector (detector issue): per frame against the pose model as shipped.
    for rt, name in RUNTIMES[:2]:
        det = r.bundle_ms(r.detector_variant, rt, "fp32", 1) if r.detector_variant else None
        pose = r.bundle_ms("starpose_t", rt, "fp32", 1)
        check(f"person detector fp32 ≤ 1.5x the StarPose-t fp32 bundle, {name}, 1 thread",
              det / pose if det and pose else None, 1.5)
    return out


def _charts(r: Results, img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    img.mkdir(parents=True, exist_ok=True)
    made = []
    models = [m for m in ORDER if any(r.ms(m, rt, 1) for rt, _ in RUNTIMES)]
    models += [m for m in ("blazepose_lite", "blazepose_full", "blazepose_heavy") if r.ms(m, "tflite", 1)]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / len(RUNTIMES)
    x = np.arange(len(models))
    for i, (rt, name) in enumerate(RUNTIMES):
        vals = [r.ms(m, rt, 1) or 0.0 for m in models]
        ax.bar(x + (i - 1) * width, vals, width, label=name)
    ax.set_xticks(x, [LABEL.get(m, m).replace(" (", "\n(") for m in models], fontsize=7)
    ax.set_ylabel("ms per inference, 1 thread (lower is better)")
    ax.set_title("fp32 latency by runtime (one run, same machine)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(img / "bench_latency.png", dpi=110)
    plt.close(fig)
    made.append("bench_latency.png")

    ap = r.doc.get("published_coco_ap", {})
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for m in ORDER:
        base = m.split("/")[0]
        ms = r.ms(m, "executorch", 1)
        if ms is None or base not in ap or m.endswith("/released"):
            continue
        ax.scatter(ms, ap[base], s=40)
        ax.annotate(LABEL.get(m, m).split(" (")[0], (ms, ap[base]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("ExecuTorch XNNPACK fp32 ms, 1 thread (this machine)")
    ax.set_ylabel("published COCO val AP (256x192)")
    ax.set_title("Latency vs published accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(img / "bench_ap.png", dpi=110)
    plt.close(fig)
    made.append("bench_ap.png")
    return made


def render(doc: dict[str, Any], results_name: str, charts: list[str]) -> str:
    r = Results(doc)
    m = doc["machine"]
    v = m.get("versions", {})
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks.report` from `benchmarks/results/{results_name}` (run by "
        "`python -m benchmarks.suite`). Do not edit by hand.",
        "",
        f"**Machine:** {m.get('cpu_model')} ({m.get('cpus_usable')} usable CPUs, {m.get('platform')}), "
        f"Python {m.get('python')}; torch {v.get('torch')}, executorch {v.get('executorch')}, "
        f"ai-edge-litert {v.get('ai-edge-litert')}, litert-torch {v.get('litert-torch')}, "
        f"onnxruntime {v.get('onnxruntime')}. Date {doc.get('date')}.",
        "",
        f"**Method:** `mobile_export.bench` — one process per artifact and thread count, thread counts fixed "
        f"in every runtime, {doc['warmup']} warm-up runs, {doc['runs']} timed runs split into {doc['rounds']} "
        "rounds that alternate between the artifacts (order reversed every other round); median with p10–p90. "
        "Random weights (latency does not depend on them). Ratios in brackets are against Lite-HRNet-18 in the "
        "same runtime and thread count. Single-person crop, batch 1, 256x192 (BlazePose: its own 256x256).",
        "",
    ]
    for chart in charts:
        lines += [f"![{chart}](img/{chart})", ""]
    if "bench_ap.png" in charts:
        lines += ["Accuracy in the second chart is *published* COCO val AP at 256x192, not measured here: StarPose "
                  "from the authors' earlier release (StarPose-16 ≈ t 67.2, StarPose-18 ≈ s 70.0, the only figures they "
                  "published), Lite-HRNet and RTMPose from their papers. The weights packaged with this SDK are far "
                  "below these (docs/MODEL_CARD.md); released checkpoints load with `--weights PATH`.", ""]
    for n in r.threads:
        lines += [f"## Networks alone, fp32, {n} thread{'s' if n > 1 else ''}: median ms (ratio to Lite-HRNet-18)", "",
                  "| model | params | GMACs | " + " | ".join(name for _, name in RUNTIMES) + " |",
                  "|---|---:|---:|" + "---:|" * len(RUNTIMES)]
        for model in [*ORDER, "blazepose_lite", "blazepose_full", "blazepose_heavy"]:
            if not any((model, rt, n) in r.raw for rt, _ in RUNTIMES):
                continue
            st = doc.get("model_stats", {}).get(model)
            cells = []
            for rt, _ in RUNTIMES:
                ms = r.ms(model, rt, n)
                cells.append(_fmt(ms, r.ratio(model, rt, n)) if ms is not None
                             else ("–" if (model, rt, n) not in r.raw else r.status(model, rt, n)))
            params = f"{st['params'] / 1e6:.3f}M" if st else ""
            macs = f"{st['macs'] / 1e9:.3f}" if st else ""
            lines.append(f"| {LABEL.get(model, model)} | {params} | {macs} | " + " | ".join(cells) + " |")
        lines.append("")
    if r.bundle:
        lines += ["## As shipped: uint8 crop in, keypoints out (pre- and post-processing in the graph)", "",
                  "| artifact | runtime | precision | " + " | ".join(f"{n} thr ms" for n in r.threads)
                  + " | int8 / fp32 (1 thr) | " + " | ".join(f"/ network ({n} thr)" for n in r.threads)
                  + " | size MB | export s | peak MB |",
                  "|---|---|---|" + "---:|" * len(r.threads) + "---:|" + "---:|" * len(r.threads) + "---:|---:|---:|"]
        for (variant, fmt, prec, n), row in sorted(r.bundle.items()):
            if n != r.threads[0]:
                continue
            t = row["target"]
            times = [_fmt(r.bundle_ms(variant, fmt, prec, k)) for k in r.threads]
            fp = r.bundle_ms(variant, fmt, "fp32", n)
            mine = r.bundle_ms(variant, fmt, prec, n)
            speed = f"{mine / fp:.2f}" if prec == "int8" and fp and mine else ""
            size = f"{t['size_bytes'] / 1e6:.2f}" if t.get("size_bytes") else ""
            exp = f"{t['export_seconds']:.0f}" if t.get("export_seconds") is not None else ""
            peak = f"{row['peak_rss_mb']:.0f}" if row.get("peak_rss_mb") else ""
            status = "" if row["status"] == "ok" else f" ({row['status']}: {row['reason'][:80]})"
            over = [f"{o:.2f}" if prec == "fp32" and (o := r.bundle_overhead(variant, fmt, k)) is not None else ""
                    for k in r.threads]
            lines.append(f"| {t['name']}{status} | {fmt} | {prec} | " + " | ".join(times)
                         + f" | {speed} | " + " | ".join(over) + f" | {size} | {exp} | {peak} |")
        grouped = doc.get("notes", {}).get("grouping") == "runtime"
        lines += ["", "/ network: the fp32 bundle's median over its network alone (deploy form, float NCHW in) in "
                      "the same runtime and thread count; " + (
                          "this run timed both in the same interleaved rounds. " if grouped else
                          "this run timed the bundles in a group of their own, minutes after the networks, so "
                          "these ratios mix in whatever else changed on the machine meanwhile. ") +
                      "Export time: the whole format's export (int8: prepare, calibrate, convert and lower). "
                      "Peak MB: the benchmark process's peak resident memory (Python, the runtime libraries and "
                      "the model; ExecuTorch and TorchScript workers include torch, which their Python bindings "
                      "need; LiteRT and ONNX Runtime workers do not load it, except in runs before 2026-12-02).", ""]
    gemm = doc.get("gemm_gmacs_per_s", {})
    samples = ", ".join(f"{v:g}" for v in doc.get("gemm_samples_gmacs_per_s", {}).get("1", []))
    lines += ["## Goals (from the benchmarks and quantization issues)", "",
              f"1-thread fp32 GEMM rate measured in the same run: {gemm.get('1', '–')} GMAC/s"
              + (f" (the best of {samples}, before and after the timing)" if samples else "") + ".", "",
              "| goal | measured | holds |", "|---|---:|:---:|"]
    for goal, value, ok in goals(r):
        lines.append(f"| {goal} | {value} | {'yes' if ok else ('no' if ok is False else '–')} |")
    notes = doc.get("notes", {})
    lines += ["", "Delegation (XNNPACK subgraphs, ops left outside the delegate) is measured by "
              "`python -m benchmarks.delegation`; per-op time inside the delegate by `python -m benchmarks.profile_ops`.",
              ""]
    if notes.get("blazepose_missing"):
        lines += [f"BlazePose rows missing ({', '.join(notes['blazepose_missing'])}): run "
                  "`python recipes/default_weights/gather.py fetch-teacher` first.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    doc = json.loads(args.results.read_text(encoding="utf-8"))
    if "rows" not in doc:
        raise SystemExit(f"{args.results}: not a benchmarks.suite results file (no 'rows')")
    charts = _charts(Results(doc), args.docs / "img")
    page = args.docs / "BENCHMARKS.md"
    tmp = page.with_name(".BENCHMARKS.md.tmp")
    tmp.write_text(render(doc, args.results.name, charts) + "\n", encoding="utf-8")
    tmp.replace(page)
    print(page)
    return page


if __name__ == "__main__":
    main()
