"""The numbers the docs give for the packaged default weights are the packaged file's: its metadata,
recipes/default_weights/results/package.json (written by package.py in the same step) and
docs/MODEL_CARD.md / README.md agree. Packaging new weights without updating the docs fails here,
naming the stale line."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from safetensors import safe_open

from conftest import load_recipe

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "starpose" / "assets" / "weights" / "starpose_t.safetensors"
SUMMARY = ROOT / "recipes" / "default_weights" / "results" / "package.json"
CARD = ROOT / "docs" / "MODEL_CARD.md"
README = ROOT / "README.md"
START_EPOCHS = 45  # the distillation weights the people-mix runs started from (lineage entry 0)


@pytest.fixture(scope="module")
def meta() -> dict:
    with safe_open(str(WEIGHTS), "pt") as f:
        return f.metadata()


@pytest.fixture(scope="module")
def summary() -> dict:
    return json.loads(SUMMARY.read_text(encoding="utf-8"))


def _card_row(text: str, starts: str) -> list[str]:
    rows = [line for line in text.splitlines() if line.startswith(starts)]
    assert len(rows) == 1, f"{CARD.name}: expected one table row starting {starts!r}, found {len(rows)}"
    return [c.strip() for c in rows[0].strip().strip("|").split("|")]


def test_summary_is_the_packaged_files(meta, summary):
    packaged = json.loads(meta["summary"])
    assert packaged["validation"] == summary["validation"], f"{SUMMARY.name} is not the packaged file's summary"
    assert packaged["status"] == summary["status"] == meta["status"]
    assert packaged["lineage"] == summary["lineage"] == json.loads(meta["lineage"])
    assert int(meta["epochs"]) == sum(int(r.get("epochs", 0) or 0) for r in summary["lineage"])
    assert float(meta["keypoint_threshold"]) == pytest.approx(summary["calibration"]["keypoint_threshold"], abs=1e-4)


@pytest.mark.parametrize("row, source, metric, fmt", [
    ("| `coco` validation", "coco", "AP", "{:.3f}"),
    ("| `stock17` validation", "stock17", "AP", "{:.3f}"),
    ("| `lspet` validation", "lspet", "PCK@0.2", "{:.1f}"),
    ("| COCO fixture", "fixture", "AP", "{:.3f}"),
])
def test_card_accuracy_table(summary, row, source, metric, fmt):
    """The 'these weights (no flip)' column: the flip-test number, then the one-pass number."""
    cells = _card_row(CARD.read_text(encoding="utf-8"), row)
    got = summary["validation"][source]
    want = f"{fmt.format(got[metric])} ({fmt.format(got['no_flip_' + metric])})"
    assert cells[2] == want, f"{CARD.name}, row {row!r}: says {cells[2]!r}, {SUMMARY.name} has {want!r}"


def test_card_lineage_threshold_and_people(meta, summary):
    text = CARD.read_text(encoding="utf-8")
    recipe = _card_row(text, "| recipe |")[1]
    assert f"{meta['epochs']} epochs in the lineage" in recipe, f"{CARD.name}: the recipe row's epochs are stale"
    threshold = _card_row(text, "| keypoint threshold |")[1]
    assert threshold.startswith(f"{float(meta['keypoint_threshold']):.2f} "), \
        f"{CARD.name}: the keypoint threshold row says {threshold.split(' (')[0]}, the file {meta['keypoint_threshold']}"
    people = load_recipe("default_weights/lineage.py").people_drawn(summary["lineage"])  # sibling runs too
    training = _card_row(text, "| training people |")[1]
    assert f"drawn {people:,} times" in training, f"{CARD.name}: the training-people row should say drawn {people:,} times"


def test_readme_default_weights_paragraph(meta, summary):
    text = " ".join(README.read_text(encoding="utf-8").split())
    m = re.search(r"\*\*Default weights:\*\* the packaged `starpose_t` weights are \*(\w+)\*: (\d+) CPU epochs", text)
    assert m, f"{README.name}: the 'Default weights' paragraph is missing or reworded"
    assert m.group(1) == meta["status"], f"{README.name} calls the weights {m.group(1)}, the file {meta['status']}"
    assert int(m.group(2)) == int(meta["epochs"]) - START_EPOCHS, (
        f"{README.name}: {m.group(2)} CPU epochs, the lineage has {int(meta['epochs']) - START_EPOCHS} after the "
        f"{START_EPOCHS} distillation epochs")
    v = summary["validation"]
    for source, metric, fmt in (("stock17", "AP", "{:.2f}"), ("coco", "AP", "{:.2f}"),
                                ("lspet", "PCK@0.2", "{:.1f}"), ("fixture", "AP", "{:.2f}")):
        assert fmt.format(v[source][metric]) in text, f"{README.name}: {source} {metric} should read {fmt.format(v[source][metric])}"


def test_quantization_gates_table_ends_with_the_packaged_file(meta):
    """docs/QUANTIZATION.md keeps one row of int8 gate numbers per packaged file: the newest is this one."""
    doc = ROOT / "docs" / "QUANTIZATION.md"
    rows = [line for line in doc.read_text(encoding="utf-8").splitlines()
            if re.match(r"\| \d+ \| 2026-\d\d-\d\d \|", line)]
    assert rows, f"{doc.name}: the table of int8 gates per packaged file is missing"
    epochs = int(rows[-1].split("|")[1])
    assert epochs == int(meta["epochs"]), (
        f"{doc.name}: the int8 gates table ends with the {epochs}-epoch weights; the packaged file has "
        f"{meta['epochs']} epochs (run `pytest -m slow tests/test_quant_accuracy.py` and add its row)")
