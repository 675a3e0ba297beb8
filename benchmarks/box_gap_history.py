"""The detector's cost to the pose model over the packaged weights, one row per set of weights.

Each time new default weights are packaged, ``run`` measures ``benchmarks.box_gap`` on the three
sets docs/DETECTOR.md follows (the people set, its held-out photos, the COCO fixture) at the shipped
detector input and at 416x416, two runs at a time, and merges the six into one results file,
``results/<date>-box-gap-<N>ep.json`` (N: the epochs in the weights' lineage). ``table`` builds the
history table of docs/DETECTOR.md from every such file, and ``table --write`` replaces it between the
markers there, so the docs follow the results files (``tests/test_box_gap_history.py`` checks that
they agree)::

    python -m benchmarks.box_gap_history run --note "starpose_t 249 epochs (...)"
    python -m benchmarks.box_gap_history table --write
    python -m benchmarks.box_gap_history merge OUT.json people_224.json ... --note "..."
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from starpose.fileio import between_markers, rewrite_between_markers

from .common import machine_info, write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DETECTOR_MD = ROOT / "docs" / "DETECTOR.md"
PACKAGED = ROOT / "starpose" / "assets" / "weights" / "starpose_t.safetensors"

BEGIN = "<!-- box-gap history: python -m benchmarks.box_gap_history table --write -->"
END = "<!-- end of box-gap history -->"

SHIPPED = (224, 160)
LARGE = (416, 416)
# (key, label, annotation file and image folder under ../shared, --holdout)
SETS = (
    ("people", "people set (256)", "people/coco/person_keypoints.json", "people/coco/images", None),
    ("held", "held-out photos (75)", "people/coco/person_keypoints.json", "people/coco/images", "coco"),
    ("fixture", "fixture (12)", "fixtures/coco/test_coco.json", "fixtures/coco", None),
)
# A per-weights file: <date>-box-gap-<epochs>ep.json, or -intervals (the same runs with the bootstrap added).
NAME = re.compile(r"^(\d{4}-\d\d-\d\d)-box-gap-(\d+)ep(-intervals)?\.json$")


def set_of(run: dict, where: Path) -> str:
    """Which of :data:`SETS` a run of ``benchmarks.box_gap`` measured."""
    ann = str(run.get("ann_file", ""))
    if ann.endswith("fixtures/coco/test_coco.json"):
        return "fixture"
    if ann.endswith("people/coco/person_keypoints.json"):
        return "held" if run.get("holdout") == "coco" else "people"
    raise SystemExit(f"{where}: a run on {ann or 'no annotation file'!r}, not one of the three sets")


def _input(run: dict) -> tuple[int, int] | None:
    hw = run.get("detector_input_hw")
    return (int(hw[0]), int(hw[1])) if isinstance(hw, (list, tuple)) and len(hw) == 2 else None


def read_results(path: Path) -> dict:
    """A box-gap results file, checked: clear errors name the file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such results file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SystemExit(f"{path}: not a JSON file ({e})") from None
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list) or not runs:
        raise SystemExit(f"{path}: no 'runs' list (expected the output of benchmarks.box_gap)")
    for run in runs:
        ap = run.get("AP") if isinstance(run, dict) else None
        if not isinstance(ap, dict) or not {"gt", "ours"} <= set(ap):
            raise SystemExit(f"{path}: a run without AP['gt'] and AP['ours']")
    return doc


def history_files(results: Path = RESULTS) -> dict[int, Path]:
    """The per-weights results file of each epoch count: where two hold the same weights (a rerun that
    added the bootstrap), the one with more intervals, then the later name."""
    best: dict[int, tuple[tuple[int, str], Path]] = {}
    for path in sorted(Path(results).glob("*-box-gap-*ep*.json")):
        m = NAME.match(path.name)
        if not m:
            continue
        doc = read_results(path)
        key = (sum("ours_to_gt_bootstrap" in r for r in doc["runs"]), path.name)
        epochs = int(m.group(2))
        if epochs not in best or key > best[epochs][0]:
            best[epochs] = (key, path)
    return {e: p for e, (_, p) in sorted(best.items())}


def _two(value: float) -> str:
    """Two decimals, halves up as written by hand (0.845 -> 0.85, where ``f"{0.845:.2f}"`` gives 0.84)."""
    return str(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _ratio(run: dict | None) -> str:
    if run is None:
        return ""
    gt, ours = float(run["AP"]["gt"]), float(run["AP"]["ours"])
    ratio = (run.get("ratio_to_gt") or {}).get("ours")  # box_gap's own, to 3 digits, as the prose quotes it
    if ratio is None and gt > 0:
        ratio = ours / gt
    text = f"{_two(ratio)}x" if ratio is not None else "n/a"
    boot = run.get("ours_to_gt_bootstrap")
    if boot and boot.get("interval_90"):
        lo, hi = boot["interval_90"]
        text += f" [{_two(lo)}, {_two(hi)}]"
    return text


def row(epochs: int, path: Path) -> str | None:
    """One table row, or None for a file measured at neither input (before spec version 3's 224x160)."""
    doc = read_results(path)
    cells: dict[tuple[str, tuple[int, int] | None], dict] = {}
    for run in doc["runs"]:
        cells[(set_of(run, path), _input(run))] = run
    if not any(hw in (SHIPPED, LARGE) for _, hw in cells):
        return None
    out = [str(epochs), str(doc.get("date") or path.name[:10])]  # history_files' names start with the date
    for key, *_ in SETS:
        shipped, large = cells.get((key, SHIPPED)), cells.get((key, LARGE))
        gt = shipped or large
        out += [f"{float(gt['AP']['gt']):.3f}" if gt else "", _ratio(shipped), _ratio(large)]
    return "| " + " | ".join(out) + " |"


def table(results: Path = RESULTS) -> str:
    """The history table: per set, `--boxes gt` AP and `ours` / `gt` at both inputs (90% interval of the
    photo bootstrap where the file has one)."""
    head = ["epochs", "measured"]
    for _, label, *_ in SETS:
        head += [f"{label}: `gt` AP", "224x160 (shipped)", "416x416"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---:|" * 2 + "---:|---|---|" * len(SETS)]
    files = history_files(results)
    if not files:
        raise SystemExit(f"{results}: no <date>-box-gap-<N>ep.json results files")
    rows += [r for r in (row(e, p) for e, p in files.items()) if r is not None]
    return "\n".join(rows)


def current_table(text: str, where: Path) -> str:
    """The table between the markers of ``text``."""
    return between_markers(text, BEGIN, END, where)


def merge(files: list[Path], note: str, command: str) -> dict:
    """One per-weights payload from single runs of ``benchmarks.box_gap``: each of the six (set, input)
    pairs once, measured with one pose weights."""
    order = [(k, hw) for k, *_ in SETS for hw in (SHIPPED, LARGE)]
    found: dict[tuple[str, tuple[int, int] | None], tuple[Path, dict]] = {}
    weights, machine = set(), None
    for path in files:
        doc = read_results(path)
        machine = machine or doc.get("machine")
        for run in doc["runs"]:
            key = (set_of(run, path), _input(run))
            if key not in order:
                raise SystemExit(f"{path}: detector input {run.get('detector_input_hw')} is neither "
                                 f"{SHIPPED[0]}x{SHIPPED[1]} nor {LARGE[0]}x{LARGE[1]}")
            if key in found:
                raise SystemExit(f"{path}: {key[0]} at {key[1][0]}x{key[1][1]} is also in {found[key][0]}")
            found[key] = (path, run)
            weights.add((run.get("variant"), run.get("weights"), run.get("flip")))
    if len(weights) > 1:
        raise SystemExit(f"the runs were measured with different pose models: {sorted(map(str, weights))}")
    missing = [f"{k} at {hw[0]}x{hw[1]}" for (k, hw) in order if (k, hw) not in found]
    if missing:
        raise SystemExit(f"missing runs: {', '.join(missing)}")
    runs = [found[key][1] for key in order]
    return {"date": datetime.date.today().isoformat(), "benchmark": "box_gap",
            "what": "OKS AP from labelled boxes to the bundled detector's boxes, one change at a time, "
                    "at the shipped input and at 416x416",
            "machine": machine, "runs": runs, "command": command, "weights_note": note}


def lineage_epochs(weights: Path) -> int:
    """The epochs in a weight file's lineage (the N of its results file name)."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), "pt") as f:
            meta = f.metadata() or {}
        lineage = json.loads(meta["lineage"])
        return sum(int(r.get("epochs", 0) or 0) for r in lineage)
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise SystemExit(f"{weights}: no readable lineage in its metadata ({e}); pass --epochs") from None


RUN_COMMAND = ("python -m benchmarks.box_gap --ann-file ANN --img-dir DIR [--holdout coco] --detector-input HxW "
               "--resamples R, the three sets at 224x160 (shipped) and 416x416, via "
               "python -m benchmarks.box_gap_history run")


def box_gap_commands(shared: Path, weights: str, resamples: int, tmp: Path) -> list[tuple[str, list[str], Path]]:
    """The six ``benchmarks.box_gap`` runs (label, command run in the checkout, its results file). The data
    paths are given relative to the checkout (``../shared/...`` beside it), so the results files name no
    machine's folders."""
    jobs = []
    for key, _, ann, img, holdout in SETS:
        for hw in (SHIPPED, LARGE):
            part = tmp / f"{key}_{hw[0]}x{hw[1]}.json"
            cmd = [sys.executable, "-m", "benchmarks.box_gap", "--ann-file", _from_root(shared / ann),
                   "--img-dir", _from_root(shared / img), "--detector-input", f"{hw[0]}x{hw[1]}",
                   "--weights", weights, "--resamples", str(resamples), "--out", str(part)]
            if holdout:
                cmd += ["--holdout", holdout]
            jobs.append((f"{key} at {hw[0]}x{hw[1]}", cmd, part))
    return jobs


def _from_root(path: Path) -> str:
    return os.path.relpath(Path(path).resolve(), ROOT)


def run_all(shared: Path, weights: str, note: str, out: Path | None, jobs: int, resamples: int,
            epochs: int | None) -> Path:
    shared = Path(shared)
    if not shared.is_dir():
        raise SystemExit(f"{shared}: no such folder (the box-gap sets are read from ../shared)")
    for _, _, ann, img, _ in SETS:
        for p in (shared / ann, shared / img):
            if not p.exists():
                raise SystemExit(f"{p}: not found")
    if epochs is None:
        epochs = lineage_epochs(PACKAGED if weights == "default" else Path(weights))
    date = datetime.date.today().isoformat()
    out = out or RESULTS / f"{date}-box-gap-{epochs}ep.json"
    with tempfile.TemporaryDirectory() as tmp:
        jobs_list = box_gap_commands(shared, weights, resamples, Path(tmp))

        def one(job):
            label, cmd, part = job
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"box_gap {label} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
            print(f"done: {label}", flush=True)
            return part

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            parts = list(pool.map(one, jobs_list))
        payload = merge(parts, note, RUN_COMMAND)
    write_json(out, payload)
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="print the history table (or --write it into docs/DETECTOR.md)")
    t.add_argument("--write", action="store_true")
    t.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    t.add_argument("--doc", type=Path, default=DETECTOR_MD, help=argparse.SUPPRESS)
    m = sub.add_parser("merge", help="merge six single box_gap results files into one per-weights file")
    m.add_argument("out", type=Path)
    m.add_argument("files", type=Path, nargs="+")
    m.add_argument("--note", required=True, help="which weights, and what ran beside the runs")
    r = sub.add_parser("run", help="measure the six runs (two at a time, 1 thread each) and merge them")
    r.add_argument("--note", required=True, help="which weights, and what ran beside the runs")
    r.add_argument("--weights", default="default")
    r.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    r.add_argument("--out", type=Path, default=None,
                   help="default: results/<date>-box-gap-<N>ep.json, N the epochs in the weights' lineage")
    r.add_argument("--epochs", type=int, default=None, help="N of the file name (default: from the lineage)")
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args(argv)
    if args.cmd == "table":
        new = table(args.results)
        if not args.write:
            print(new)
            return 0
        if rewrite_between_markers(args.doc, BEGIN, END, new):
            print(f"{args.doc}: box-gap history rewritten ({len(new.splitlines()) - 2} rows)")
        else:
            print(f"{args.doc}: the box-gap history is already current")
        return 0
    if args.cmd == "merge":
        write_json(args.out, merge(args.files, args.note, RUN_COMMAND))
        print(f"wrote {args.out}")
        return 0
    run_all(args.shared, args.weights, args.note, args.out, args.jobs, args.resamples, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
