"""recipes/default_weights/lineage.py: the runs table of the recipe README is the packaged file's
lineage, row for row; the table shows what each run recorded; bad files and READMEs are clear errors
and leave the README as it was."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from conftest import load_recipe


@pytest.fixture(scope="module")
def mod():
    return load_recipe("default_weights/lineage.py")


def test_readme_table_is_the_packaged_lineage(mod):
    """Packaging a new file without `lineage.py --write` fails here, naming the fix."""
    readme = mod.README.read_text(encoding="utf-8")
    want = mod.table(mod.read_lineage(mod.PACKAGED))
    assert mod.current_table(readme, mod.README) == want, (
        "recipes/default_weights/README.md's runs table differs from the packaged weights' lineage: "
        "run `python recipes/default_weights/lineage.py --write`")


def _weights(path, lineage):
    save_file({"w": torch.zeros(1)}, str(path), metadata={"lineage": json.dumps(lineage)} if lineage else {})
    return path


def test_rows_show_what_each_run_recorded(mod, tmp_path):
    lineage = [
        {"recipe": "recipes/default_weights", "epochs": "45", "status": "interim"},
        {"epochs": 20, "people_seen": 240000, "base_lr": 0.001, "mix": "lspet 60%, coco 40%"},
        {"epochs": 7, "people_seen": 62944, "base_lr": 0.00025, "mix": "coco 100%", "det_box_prob": 0.5,
         "truncate_prob": 0.25, "distractor_prob": 0.5, "val_no_flip": True, "seed": 38, "of_epochs": 8,
         "val_score": 0.5072, "val_score_flip": 0.5164, "val_score_no_flip": 0.4981,
         "averaged": {"with": "old.safetensors", "with_epochs": "230", "share_of_this_run": 0.75}},
        {"epochs": 8, "people_seen": 71936, "base_lr": 0.0005, "mix": "coco 100%", "seed": 1, "of_epochs": 8,
         "val_score": 0.41},
    ]
    rows = mod.table(mod.read_lineage(_weights(tmp_path / "w.safetensors", lineage))).splitlines()
    assert rows[0] == mod.HEADER and len(rows) == 2 + len(lineage)
    assert rows[2].startswith("| start | 45 | 45 |") and "interim" in rows[2]
    assert rows[3] == "| 1 | 20 | 65 | 240,000 | 0.001 | lspet 60%, coco 40% |  |  |  |"
    cells = [c.strip() for c in rows[4].strip("|").split("|")]
    assert cells[:6] == ["2", "7", "72", "62,944", "0.00025", "coco 100%"]
    assert cells[6] == "detector box 0.5, cut off 0.25, neighbour pasted 0.5"
    assert cells[7] == "0.5164 flip / 0.4981 one pass"
    assert cells[8] == ("best EMA at epoch 7 of 8; seed 38; validated with and without flip; "
                        "averaged 0.75 / 0.25 with `old.safetensors` (230 epochs)")
    cells = [c.strip() for c in rows[5].strip("|").split("|")]
    assert cells[2] == "80" and cells[7] == "0.4100" and cells[8] == "seed 1"  # ran its whole length


def test_write_replaces_only_the_table(mod, tmp_path):
    w = _weights(tmp_path / "w.safetensors", [{"epochs": 3, "people_seen": 30, "base_lr": 0.001, "mix": "a 100%"}])
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{mod.BEGIN}\n| old |\n{mod.END}\n\nafter\n", encoding="utf-8")
    assert mod.main([str(w), "--write", "--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert mod.current_table(text, readme) == mod.table(mod.read_lineage(w))
    assert "| old |" not in text
    assert mod.main([str(w), "--write", "--readme", str(readme)]) == 0  # already current: unchanged
    assert readme.read_text(encoding="utf-8") == text
    assert list(tmp_path.glob(".README.md.*")) == []  # no temp file left behind


@pytest.mark.parametrize("case, message", [
    ("missing", "no such weight file"),
    ("garbage", "not a readable safetensors file"),
    ("no-lineage", "no lineage in its metadata"),
    ("bad-json", "not JSON"),
    ("not-a-list", "not a list of runs"),
])
def test_bad_weight_files_are_named(mod, tmp_path, case, message):
    path = tmp_path / "w.safetensors"
    if case == "garbage":
        path.write_bytes(b"not a safetensors file")
    elif case == "no-lineage":
        _weights(path, None)
    elif case in ("bad-json", "not-a-list"):
        save_file({"w": torch.zeros(1)}, str(path),
                  metadata={"lineage": "{oops" if case == "bad-json" else json.dumps({"epochs": 1})})
    with pytest.raises(SystemExit, match=message) as e:
        mod.main([str(path)])
    assert str(path) in str(e.value)


@pytest.mark.parametrize("text", ["no markers at all\n", "{END}\n{BEGIN}\n", "{BEGIN}\n{BEGIN}\n{END}\n"])
def test_readme_without_one_pair_of_markers_is_left_alone(mod, tmp_path, text):
    w = _weights(tmp_path / "w.safetensors", [{"epochs": 1, "people_seen": 1, "mix": "a 100%"}])
    readme = tmp_path / "README.md"
    original = text.format(BEGIN=mod.BEGIN, END=mod.END)
    readme.write_text(original, encoding="utf-8")
    with pytest.raises(SystemExit, match="expected one") as e:
        mod.main([str(w), "--write", "--readme", str(readme)])
    assert str(readme) in str(e.value)
    assert readme.read_text(encoding="utf-8") == original
