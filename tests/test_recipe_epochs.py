"""recipes/default_weights/epochs.py: a run's history.json as the per-epoch table of RUNS.md's run sections, the best
epoch in bold; a missing or malformed history is a clear error naming the file."""
from __future__ import annotations

import json

import pytest

from conftest import load_recipe


@pytest.fixture(scope="module")
def mod():
    return load_recipe("default_weights/epochs.py")


def _val(coco, stock, lspet, fix):
    return {"coco": {"AP": coco}, "stock17": {"AP": stock}, "lspet": {"PCK@0.2": lspet},
            "extra:test_coco": {"AP": fix}}


def test_table_with_and_without_one_pass_numbers(mod, tmp_path):
    history = [
        {"epoch": 1, "people_per_s": 25.4, "val_score": 0.50, "val_score_flip": 0.51, "val_score_no_flip": 0.49,
         "val": _val(0.1661, 0.821, 54.04, 0.234), "val_no_flip": _val(0.168, 0.799, 51.9, 0.295)},
        {"epoch": 2, "people_per_s": 30.6, "val_score": 0.52, "val_score_flip": 0.5312, "val_score_no_flip": 0.5088,
         "val": _val(0.171, 0.816, 54.5, float("nan")), "val_no_flip": _val(0.172, 0.799, 52.1, 0.292)},
    ]
    (tmp_path / "history.json").write_text(json.dumps(history))
    rows = mod.table(mod.read_history(tmp_path)).splitlines()
    assert rows[0] == "|  | 1 | 2 |"
    assert rows[2] == "| `coco`, flip / one pass | 0.166 / 0.168 | 0.171 / 0.172 |"
    assert rows[4] == "| `lspet` | 54.0 / 51.9 | 54.5 / 52.1 |"
    assert rows[5] == "| fixture | 0.234 / 0.295 | - / 0.292 |"  # a NaN (no people scored) is a dash
    assert rows[6] == "| score, flip / one pass | 0.5100 / 0.4900 | **0.5312 / 0.5088** |"
    assert mod.summary(history) == "2 epochs, 25-31 people/s; best selection score 0.5200 at epoch 2"

    flip_only = [{"epoch": 1, "val_score": 0.3, "val": _val(0.1, 0.2, 30.0, 0.3)},
                 {"epoch": 2, "val_score": 0.2, "val": _val(0.1, 0.2, 30.0, 0.3)}]
    rows = mod.table(flip_only).splitlines()
    assert rows[2] == "| `coco` | 0.100 | 0.100 |" and rows[-1] == "| score | **0.3000** | 0.2000 |"
    assert mod.summary(flip_only).startswith("2 epochs, speed not recorded;")
    assert mod.summary(history[:1]).startswith("1 epoch, 25 people/s;")


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    ("{oops", "not a JSON file"),
    ("[]", "expected a list of epoch records"),
    ('[{"loss": 1}]', "expected a list of epoch records"),
])
def test_bad_history_is_named(mod, tmp_path, content, problem):
    if content is not None:
        (tmp_path / "history.json").write_text(content)
    with pytest.raises(SystemExit, match=rf"history\.json: {problem}"):
        mod.main([str(tmp_path)])
