"""A training run's validation, epoch by epoch, as the Markdown table of the run sections of RUNS.md.

``train`` writes one record per epoch to ``RUN_DIR/history.json``: the EMA's validation per source
with the flip test (``val``) and, with ``--val-no-flip``, in one pass (``val_no_flip``), the selection
scores and the speed. This prints them as one column per epoch, the best epoch's score in bold, and a
line with the run's speed and the epoch that scored best::

    python recipes/default_weights/epochs.py runs/people_h39
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

# (row label, validation key, metric, digits)
ROWS = (
    ("`coco`", "coco", "AP", 3),
    ("`stock17`", "stock17", "AP", 3),
    ("`lspet`", "lspet", "PCK@0.2", 1),
    ("fixture", "extra:test_coco", "AP", 3),
)


def read_history(run_dir: Path) -> list[dict]:
    """The epoch records of ``run_dir/history.json``; a clear error naming the file otherwise."""
    path = Path(run_dir) / "history.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (a run folder of `train` has one after its first epoch)")
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SystemExit(f"{path}: not a JSON file ({e})") from None
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) and "epoch" in r for r in history):
        raise SystemExit(f"{path}: expected a list of epoch records, each with an 'epoch'")
    return history


def _metric(val: dict, key: str, metric: str, digits: int) -> str:
    value = (val or {}).get(key, {}).get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.{digits}f}"


def table(history: list[dict]) -> str:
    no_flip = any("val_no_flip" in r for r in history)
    best = max(range(len(history)), key=lambda i: history[i].get("val_score", float("-inf")))
    head = [""] + [str(r["epoch"]) for r in history]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for n, (label, key, metric, digits) in enumerate(ROWS):
        cells = []
        for r in history:
            cell = _metric(r.get("val"), key, metric, digits)
            if no_flip:
                cell += " / " + _metric(r.get("val_no_flip"), key, metric, digits)
            cells.append(cell)
        name = label + (", flip / one pass" if no_flip and n == 0 else "")
        rows.append("| " + " | ".join([name] + cells) + " |")
    scores = []
    for i, r in enumerate(history):
        if no_flip and "val_score_flip" in r:
            cell = f"{r['val_score_flip']:.4f} / {r['val_score_no_flip']:.4f}"
        elif "val_score" in r:
            cell = f"{r['val_score']:.4f}"
        else:
            cell = "-"
        scores.append(f"**{cell}**" if i == best and cell != "-" else cell)
    rows.append("| " + " | ".join(["score" + (", flip / one pass" if no_flip else "")] + scores) + " |")
    return "\n".join(rows)


def summary(history: list[dict]) -> str:
    speeds = [float(r["people_per_s"]) for r in history if r.get("people_per_s")]
    best = max(history, key=lambda r: r.get("val_score", float("-inf")))
    low, high = (f"{min(speeds):.0f}", f"{max(speeds):.0f}") if speeds else ("", "")
    speed = "speed not recorded" if not speeds else f"{low} people/s" if low == high else f"{low}-{high} people/s"
    epochs = f"{len(history)} epoch{'s' if len(history) != 1 else ''}"
    return (f"{epochs}, {speed}; best selection score {best.get('val_score', float('nan')):.4f} "
            f"at epoch {best['epoch']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="the run's folder (RUN_DIR of train_people.sh)")
    args = ap.parse_args(argv)
    history = read_history(args.run_dir)
    print(table(history))
    print()
    print(summary(history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
