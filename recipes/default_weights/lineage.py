"""The runs behind a weight file, one table row per run, from the lineage in its metadata.

Every training run appends one entry to the ``lineage`` of the weights it saves (epochs, people seen,
peak lr, the mix, the crop augmentations; since 2026-12-06 also its seed, its planned length and its
validation scores), and ``average.py`` marks the entries it averaged. This prints that lineage as
the Markdown table of the recipe README's *Runs* section, or, with ``--write``, replaces the table
between the README's markers so that the README and the packaged file cannot drift apart
(``tests/test_recipe_lineage.py`` checks that they agree)::

    python recipes/default_weights/lineage.py                      # the packaged starpose_t weights
    python recipes/default_weights/lineage.py runs/people_h38/best.safetensors
    python recipes/default_weights/lineage.py --write              # update recipes/default_weights/README.md
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PACKAGED = ROOT / "starpose" / "assets" / "weights" / "starpose_t.safetensors"
README = HERE / "README.md"
sys.path.insert(0, str(ROOT))

from starpose.fileio import between_markers, rewrite_between_markers  # noqa: E402  (after the checkout is on the path)

BEGIN = "<!-- runs table: python recipes/default_weights/lineage.py --write -->"
END = "<!-- end of runs table -->"

HEADER = ("| run | epochs | lineage after | people drawn | peak lr | mix (share of each epoch) "
          "| crops | validation score | notes |")
RULE = "|---:|---:|---:|---:|---:|---|---|---|---|"


def read_lineage(path: Path) -> list[dict]:
    """The lineage list of a safetensors file; a clear error if the file has none."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path}: no such weight file")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for a damaged header
        raise SystemExit(f"{path}: not a readable safetensors file ({e})") from None
    if "lineage" not in meta:
        raise SystemExit(f"{path}: no lineage in its metadata (expected weights saved by `train` or package.py)")
    try:
        lineage = json.loads(meta["lineage"])
    except json.JSONDecodeError as e:
        raise SystemExit(f"{path}: its lineage metadata is not JSON ({e})") from None
    if not isinstance(lineage, list) or not all(isinstance(r, dict) for r in lineage):
        raise SystemExit(f"{path}: its lineage metadata is not a list of runs")
    return lineage


def _lr(value) -> str:
    return f"{float(value):.2g}" if value not in (None, "") else ""


def _crops(run: dict) -> str:
    parts = []
    for key, label in (("det_box_prob", "detector box"), ("truncate_prob", "cut off"),
                       ("distractor_prob", "neighbour pasted")):
        if run.get(key):
            parts.append(f"{label} {float(run[key]):g}")
    return ", ".join(parts)


def _score(run: dict) -> str:
    if "val_score_flip" in run and "val_score_no_flip" in run:
        return f"{run['val_score_flip']:.4f} flip / {run['val_score_no_flip']:.4f} one pass"
    if "val_score" in run:
        return f"{run['val_score']:.4f}"
    return ""


def _notes(run: dict) -> str:
    notes = []
    if run.get("of_epochs") and int(run["of_epochs"]) != int(run.get("epochs", 0) or 0):
        notes.append(f"best EMA at epoch {run['epochs']} of {run['of_epochs']}")
    if "seed" in run:
        notes.append(f"seed {run['seed']}")
    if run.get("val_no_flip"):
        notes.append("validated with and without flip")
    avg = run.get("averaged")
    if isinstance(avg, dict):
        share = float(avg.get("share_of_this_run", 0.5))
        other = avg.get("with", "another file")
        epochs = avg.get("with_epochs")
        also = [a for a in avg.get("also", []) if isinstance(a, dict)]
        start = f"`{other}`" + (f" ({epochs} epochs)" if epochs else "")
        if also:
            notes.append(f"averaged in equal shares ({share:.3g} each) with {start} and "
                         + ", ".join(_sibling(a) for a in also))
        else:
            notes.append(f"averaged {share:g} / {1 - share:g} with {start}")
    return "; ".join(notes)


def _sibling(entry: dict) -> str:
    """A run averaged in beside this one (same starting weights): its file and its own run's facts."""
    run = entry.get("run", {})
    facts = [f"{run['epochs']} epochs" if run.get("epochs") else "",
             f"{int(run['people_seen']):,} people" if run.get("people_seen") else "",
             f"seed {run['seed']}" if "seed" in run else "",
             f"lr {_lr(run['base_lr'])}" if run.get("base_lr") else ""]
    facts = [f for f in facts if f]
    return f"the sibling run `{entry.get('file', '?')}`" + (f" ({', '.join(facts)})" if facts else "")


def people_drawn(lineage: list[dict]) -> int:
    """People drawn to train the weights: every run of the lineage, and the sibling runs averaged in."""
    total = 0
    for run in lineage:
        total += int(run.get("people_seen", 0) or 0)
        avg = run.get("averaged")
        if isinstance(avg, dict):
            total += sum(int(a.get("run", {}).get("people_seen", 0) or 0) for a in avg.get("also", [])
                         if isinstance(a, dict))
    return total


def table(lineage: list[dict]) -> str:
    """The Markdown table: the first entry is the weights the first run started from."""
    rows = [HEADER, RULE]
    total = 0
    for i, run in enumerate(lineage):
        epochs = int(run.get("epochs", 0) or 0)
        total += epochs
        if i == 0 and "people_seen" not in run:
            status = run.get("status", "")
            rows.append(f"| start | {epochs} | {total} | | | earlier recipe (`{run.get('recipe', '?')}`"
                        f"{', ' + status if status else ''}) | | | starting weights |")
            continue
        people = run.get("people_seen")
        rows.append("| " + " | ".join([
            str(i), str(epochs), str(total), f"{int(people):,}" if people not in (None, "") else "",
            _lr(run.get("base_lr")), str(run.get("mix", "")), _crops(run), _score(run), _notes(run),
        ]) + " |")
    return "\n".join(rows)


def current_table(text: str, where: Path) -> str:
    """The table between the markers of ``text``."""
    return between_markers(text, BEGIN, END, where)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", nargs="?", type=Path, default=PACKAGED,
                    help="a safetensors file with a lineage (default: the packaged starpose_t weights)")
    ap.add_argument("--write", action="store_true", help=f"replace the table in {README.relative_to(ROOT)}")
    ap.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    new = table(read_lineage(args.weights))
    if not args.write:
        print(new)
        return 0
    if rewrite_between_markers(args.readme, BEGIN, END, new):
        print(f"{args.readme}: runs table updated ({len(new.splitlines()) - 2} rows)")
    else:
        print(f"{args.readme}: the runs table is already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
