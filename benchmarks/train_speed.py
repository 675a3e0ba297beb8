"""Training throughput (people per second) of the real training step, data loading included.

    python -m benchmarks.train_speed                       # all setups, 3 interleaved rounds
    python -m benchmarks.train_speed --setups recipe,fast --rounds 5 --steps 24

Each setup runs in its own process (so that the allocator, the thread count and the OpenMP
settings really differ), builds the people mix of ``recipes/default_weights/people_mix.json`` (``people_mix_human.json``
when the recipe's teacher labels have not been made; ``--mix`` to choose) from ``../shared/people`` (or, without it, a generated LSP-format set of drawn people on noise, so the
benchmark still runs on a fresh machine), and times ``--steps`` optimizer steps of
:func:`starpose.train.loop.train_step` of StarPose-t at 256x192 — the loader's ``__next__`` (decode,
augmentation, affine crop, SimCC targets, collation) included — after ``--warmup`` untimed steps.
Rounds are interleaved (A B C, A B C, ...) so that drift of a shared machine hits every setup
alike; the report gives each setup's median people/s and its ratio to ``recipe``, the recipe the
default weights were trained with before (batch 16, 2 loader workers, glibc's allocator), measured
in the same run. Every setup trains the same function: same network, loss, optimizer and
augmentation; only batch size, threads, workers, allocator, memory layout and how the dilated 7x7
convolutions are computed (``"dilated": "direct"``: one dilated convolution, the code before
2026-12-04; otherwise by phases, :func:`starpose.models.starpose.dilated_depthwise_by_phases`) and
whether the network runs through ``torch.compile`` (``"compile"``) differ. One setup is a bound,
not a way to train: ``batch32-mallopt-preloaded`` makes its batches with the same loader before the
clock starts and stops the loader, so it times the training step with no data loading beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEOPLE = REPO.parent / "shared" / "people"
MIX = REPO / "recipes" / "default_weights" / "people_mix.json"
# the same human-labelled sources without the teacher labels (data/people_labels, made by the recipe)
MIX_HUMAN = REPO / "recipes" / "default_weights" / "people_mix_human.json"


def default_mix() -> Path:
    """people_mix.json when its teacher labels have been made, else people_mix_human.json."""
    return MIX if (REPO / "data" / "people_labels" / "lspet_face.json").is_file() else MIX_HUMAN


def _tcmalloc() -> str | None:
    for p in ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4"):
        if Path(p).is_file():
            return p
    return None


# name → settings. "recipe" is the baseline: the default-weights recipe before this benchmark
# (recipes/default_weights/run.sh: batch 16, --workers 2, the process's default threads, and the
# regional mixers' dilated 7x7 convolution as one dilated convolution: "dilated": "direct").
SETUPS: dict[str, dict] = {
    "recipe": {"batch": 16, "workers": 2, "threads": 0, "malloc": "glibc", "dilated": "direct"},
    "batch32": {"batch": 32, "workers": 2, "threads": 0, "malloc": "glibc"},
    "batch32-w1": {"batch": 32, "workers": 1, "threads": 0, "malloc": "glibc"},
    "batch32-w1-mallopt": {"batch": 32, "workers": 1, "threads": 0, "malloc": "mallopt"},
    "batch32-w1-mallopt-direct": {"batch": 32, "workers": 1, "threads": 0, "malloc": "mallopt", "dilated": "direct"},
    "fast": {"batch": 32, "workers": 1, "threads": 0, "malloc": "tcmalloc"},
    "fast-direct": {"batch": 32, "workers": 1, "threads": 0, "malloc": "tcmalloc", "dilated": "direct"},
    "fast-w0": {"batch": 32, "workers": 0, "threads": 0, "malloc": "tcmalloc"},
    "fast-b64": {"batch": 64, "workers": 1, "threads": 0, "malloc": "tcmalloc"},
    "fast-cl": {"batch": 32, "workers": 1, "threads": 0, "malloc": "tcmalloc", "channels_last": True},
    "fast-bf16": {"batch": 32, "workers": 1, "threads": 0, "malloc": "tcmalloc", "bf16": True},
    # bfloat16 autocast of the forward pass, as `train --bf16` does (train_step's use_amp)
    "batch32-w1-mallopt-bf16": {"batch": 32, "workers": 1, "threads": 0, "malloc": "mallopt", "bf16": True},
    # torch.compile (Inductor, default mode) of the network; compiled during the warm-up steps
    "batch32-w1-mallopt-compiled": {"batch": 32, "workers": 1, "threads": 0, "malloc": "mallopt", "compile": True},
    # an upper bound, not a setup to train with: the same loader's batches made before the clock starts
    # (its worker process then stopped), so the timed steps are the training step alone
    "batch32-mallopt-preloaded": {"batch": 32, "workers": 1, "threads": 0, "malloc": "mallopt", "preload": True},
}
DEFAULT_SETUPS = ("recipe", "batch32", "batch32-w1", "batch32-w1-mallopt-direct", "batch32-w1-mallopt", "fast-direct",
                  "fast", "fast-w0", "fast-b64", "fast-cl", "fast-bf16")


def _synthetic_people(root: Path, n: int = 256) -> Path:
    """An LSP-format folder of drawn stick people on noise (a fresh machine has no ../shared)."""
    import cv2
    import numpy as np
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    base = np.array([[40, 190], [42, 150], [45, 110], [75, 110], [78, 150], [80, 190], [25, 110], [30, 80], [40, 55],
                     [80, 55], [90, 80], [95, 110], [60, 50], [60, 20]], np.float64)
    people = []
    for i in range(n):
        j = base * rng.uniform(0.8, 1.6) + rng.uniform(0, 60, 2)
        img = rng.integers(0, 255, (360, 260, 3), dtype=np.uint8)
        for a, b in ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (9, 10), (10, 11), (2, 3), (8, 9), (12, 13)):
            cv2.line(img, tuple(int(v) for v in j[a]), tuple(int(v) for v in j[b]), (200, 40, 40), 6)
        cv2.imwrite(str(root / "images" / f"im{i + 1:05d}.jpg"), img)
        people.append(np.concatenate([j, np.ones((14, 1))], 1))
    savemat(str(root / "joints.mat"), {"joints": np.stack(people).transpose(1, 2, 0)})
    return root


def worker(settings: dict) -> dict:
    """Run inside the setup's own process: build data, model, optimizer; time the steps."""
    import torch
    from torch.utils.data import DataLoader

    from starpose.data.mix import MixSampler
    from starpose.data.targets import KLDiscretLoss
    from starpose.data.topdown import TopDownDataset, collate
    from starpose.data.transforms import AugmentConfig
    from starpose.models import create_model
    from starpose.models.starpose import RegionalMixer
    from starpose.spec import COCO_SPEC
    from starpose.train.loop import build_mix_samples, train_step, tune_allocator

    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    RegionalMixer.dilated_by_phases = settings.get("dilated", "phases") == "phases"
    allocator = tune_allocator() if settings["malloc"] == "mallopt" else os.path.basename(
        os.environ.get("LD_PRELOAD", "") or "glibc")
    if settings.get("people"):
        from starpose.data.mix import load_mix

        mix = load_mix(settings["mix"], {"people": settings["people"]})
        samples, sizes = build_mix_samples(mix, COCO_SPEC)
        weights = [s.weight for s in mix.sources]
        data = "people mix"
    else:
        from starpose.data.lsp import lsp_samples

        samples = lsp_samples(settings["synthetic"])
        sizes, weights, data = [len(samples)], [1.0], "synthetic"
    torch.manual_seed(0)
    ds = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig.with_photometric(), seed=0)
    sampler = MixSampler(sizes, weights, epoch_size=10**6, seed=0)
    loader = DataLoader(ds, batch_size=settings["batch"], sampler=sampler, num_workers=settings["workers"],
                        collate_fn=collate, drop_last=True)
    model = create_model("starpose_t").train()
    if settings.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    crit = KLDiscretLoss(use_target_weight=True)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    device = torch.device("cpu")

    net = model
    if settings.get("compile"):
        net = torch.compile(net)
    it = iter(loader)
    steps, warmup = settings["steps"], settings["warmup"]
    if settings.get("preload"):
        made = [next(it) for _ in range(warmup + steps)]
        del it  # stops the loader's worker process: nothing but the steps runs while timed
        it = iter(made)
    people = 0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
            people = 0
        batch = next(it)
        if settings.get("channels_last"):
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        train_step(net, batch, opt, crit, scaler, device, use_amp=bool(settings.get("bf16")))
        people += batch["image"].shape[0]
    dt = time.perf_counter() - t0
    return {"people_per_s": people / dt, "seconds": dt, "people": people, "threads": torch.get_num_threads(),
            "allocator": allocator, "data": data}


def run_setup(name: str, settings: dict, steps: int, warmup: int, people: Path | None, synthetic: Path | None,
              timeout: float, threads: int, mix: Path = MIX) -> dict:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["STARPOSE_MALLOC_TUNING"] = "1" if settings["malloc"] == "mallopt" else "0"
    if settings["malloc"] == "tcmalloc":
        lib = _tcmalloc()
        if lib is None:
            return {"status": "skipped", "reason": "libtcmalloc_minimal.so.4 not installed (Debian: libtcmalloc-minimal4)"}
        env["LD_PRELOAD"] = lib
    payload = {**settings, "threads": settings["threads"] or threads, "steps": steps, "warmup": warmup, "people": str(people) if people else "",
               "mix": str(mix), "synthetic": str(synthetic) if synthetic else ""}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.train_speed", "--worker", json.dumps(payload)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"status": "failed", "reason": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"}
    return {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}


def report(results: dict, baseline: str) -> str:
    base = results.get(baseline, {}).get("median")
    lines = ["| setup | batch | loader workers | allocator | other | people/s (median) | rounds | vs `" + baseline + "` |",
             "|---|---:|---:|---|---|---:|---|---:|"]
    for name, r in results.items():
        s = SETUPS[name]
        other = ", ".join([k for k in ("channels_last", "bf16", "compile") if s.get(k)]
                          + (["batches made before timing (no loader)"] if s.get("preload") else [])
                          + (["dilated conv direct"] if s.get("dilated") == "direct" else [])) or "–"
        if r.get("median") is None:
            lines.append(f"| {name} | {s['batch']} | {s['workers']} | {s['malloc']} | {other} | {r.get('reason', 'n/a')} | | |")
            continue
        ratio = f"{r['median'] / base:.2f}x" if base else "–"
        lines.append(f"| {name} | {s['batch']} | {s['workers']} | {s['malloc']} | {other} | {r['median']:.1f} | "
                     f"{', '.join(f'{v:.1f}' for v in r['rounds'])} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--setups", default=",".join(DEFAULT_SETUPS), help=f"comma-separated, from {', '.join(SETUPS)}")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=16, help="timed optimizer steps per setup and round")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--baseline", default="recipe")
    ap.add_argument("--people", type=Path, default=PEOPLE, help="../shared/people (synthetic people without it)")
    ap.add_argument("--mix", type=Path, default=None,
                    help="the mix to draw people from (default: people_mix.json when its teacher labels exist, "
                         "else people_mix_human.json)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here (default: benchmarks/results/)")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of every setup (pinned)")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    names = [n.strip() for n in args.setups.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETUPS]
    if unknown:
        raise SystemExit(f"unknown setup(s) {unknown}; known: {', '.join(SETUPS)}")
    if args.baseline not in names:
        names.insert(0, args.baseline)
    from benchmarks.common import machine_info, write_json

    people = args.people if (args.people / "lspet" / "joints.mat").is_file() else None
    mix = args.mix or default_mix()
    if args.mix is not None and not args.mix.is_file():
        raise SystemExit(f"{args.mix}: not found")
    tmp = tempfile.TemporaryDirectory()
    synthetic = None if people else _synthetic_people(Path(tmp.name) / "lsp")
    print(f"training speed of starpose_t at 256x192 on {mix.name if people else 'synthetic people'}: "
          f"{len(names)} setups x {args.rounds} rounds x {args.steps} steps", flush=True)
    results: dict[str, dict] = {n: {"rounds": [], "runs": []} for n in names}
    for r in range(args.rounds):
        for n in names:
            out = run_setup(n, SETUPS[n], args.steps, args.warmup, people, synthetic, args.timeout, args.threads, mix)
            results[n]["runs"].append(out)
            if out["status"] == "ok":
                results[n]["rounds"].append(out["people_per_s"])
                print(f"round {r + 1} {n}: {out['people_per_s']:.1f} people/s", flush=True)
            else:
                results[n]["reason"] = out["reason"]
                print(f"round {r + 1} {n}: {out['status']} ({out['reason']})", flush=True)
    for n, res in results.items():
        res["median"] = statistics.median(res["rounds"]) if res["rounds"] else None
    table = report(results, args.baseline)
    print(table)
    machine = machine_info(args.threads)
    payload = {"benchmark": "train_speed", "date": time.strftime("%Y-%m-%d"), "machine": machine,
               "data": mix.name if people else "synthetic", "steps": args.steps, "warmup": args.warmup,
               "rounds": args.rounds, "baseline": args.baseline, "setups": {n: SETUPS[n] for n in names},
               "results": results, "table": table}
    out = args.json or (Path(__file__).parent / "results" / f"{payload['date']}-train-speed.json")
    write_json(out, payload)
    print(f"results: {out}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
