"""recipes/default_weights/average.py: the mean of two weight files of one lineage, with honest
metadata, and clear errors (nothing written) when the files do not match."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import load_recipe


@pytest.fixture(scope="module")
def mod():
    return load_recipe("default_weights/average.py")


def _write(path: Path, w: float, steps: int = 3, meta: dict | None = None, index: int = 7, **extra) -> Path:
    sd = {"conv.weight": torch.full((2, 3), w), "bn.num_batches_tracked": torch.tensor(steps),
          "head.index": torch.tensor([index]), **extra}
    save_file(sd, str(path), metadata=meta or {})
    return path


def test_mean_and_lineage(mod, tmp_path):
    a = _write(tmp_path / "a.safetensors", 1.0, meta={"epochs": "150", "status": "interim"})
    lineage = [{"epochs": 45}, {"epochs": 11, "seed": 18}]
    b = _write(tmp_path / "b.safetensors", 3.0, steps=5, meta={"epoch": "11", "lineage": json.dumps(lineage),
                                                       "val_score": "0.48", "mix": "{}"})
    out = tmp_path / "avg.safetensors"
    mod.main([str(a), str(b), "--out", str(out)])
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
        torch.testing.assert_close(f.get_tensor("conv.weight"), torch.full((2, 3), 2.0))
        assert int(f.get_tensor("bn.num_batches_tracked")) == 5  # the later file's counter
        assert f.get_tensor("head.index").tolist() == [7]
    got = json.loads(meta["lineage"])
    assert got[0] == {"epochs": 45}
    assert got[-1]["seed"] == 18 and got[-1]["averaged"] == {
        "with": "a.safetensors", "with_epochs": "150", "with_status": "interim", "share_of_this_run": 0.5}
    assert meta["epoch"] == "11" and meta["mix"] == "{}" and "val_score" not in meta
    mod.average(a, b, out, later_share=0.25)
    with safe_open(str(out), "pt") as f:
        torch.testing.assert_close(f.get_tensor("conv.weight"), torch.full((2, 3), 1.5))


def test_mean_with_sibling_runs_records_each(mod, tmp_path):
    start = [{"epochs": 45}, {"epochs": 12, "seed": 43, "people_seen": 900}]
    a = _write(tmp_path / "start.safetensors", 1.0, meta={"epochs": "57", "status": "interim",
                                                         "lineage": json.dumps(start)})
    b = _write(tmp_path / "b.safetensors", 2.0, steps=5, meta={"lineage": json.dumps(
        [*start, {"epochs": 4, "seed": 45, "people_seen": 400}])})
    c_run = {"epochs": 3, "seed": 44, "people_seen": 300, "base_lr": 0.00015}
    c = _write(tmp_path / "c.safetensors", 6.0, meta={"lineage": json.dumps([*start, c_run])})
    out = tmp_path / "mean3.safetensors"
    mod.main([str(a), str(b), "--also", str(c), "--out", str(out)])
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
        torch.testing.assert_close(f.get_tensor("conv.weight"), torch.full((2, 3), 3.0))  # (1 + 2 + 6) / 3
        assert int(f.get_tensor("bn.num_batches_tracked")) == 5
    got = json.loads(meta["lineage"])
    assert got[:-1] == start and got[-1]["seed"] == 45
    assert got[-1]["averaged"] == {
        "with": "start.safetensors", "with_epochs": "57", "with_status": "interim", "share_of_this_run": 1 / 3,
        "also": [{"file": "c.safetensors", "share": 1 / 3, "run": c_run}]}
    assert meta["averaged_with"] == "start.safetensors, c.safetensors"
    lineage = load_recipe("default_weights/lineage.py")
    assert lineage.people_drawn(got) == 900 + 400 + 300  # the sibling's people count too
    notes = lineage.table(got).splitlines()[-1]
    assert ("averaged in equal shares (0.333 each) with `start.safetensors` (57 epochs) and the sibling run "
            "`c.safetensors` (3 epochs, 300 people, seed 44, lr 0.00015)") in notes


@pytest.mark.parametrize("case, message", [
    ("not-sibling", "not a sibling of"),
    ("twice", "named twice"),
    ("share", "--later-share is for a mean of two files"),
    ("sibling-keys", "hold different tensors"),
])
def test_bad_siblings_write_nothing(mod, tmp_path, case, message):
    start = [{"epochs": 45}]
    a = _write(tmp_path / "a.safetensors", 1.0, meta={"lineage": json.dumps(start)})
    b = _write(tmp_path / "b.safetensors", 2.0, meta={"lineage": json.dumps([*start, {"epochs": 4}])})
    sibling = [*start, {"epochs": 3}] if case != "not-sibling" else [{"epochs": 46}, {"epochs": 3}]
    c = _write(tmp_path / "c.safetensors", 3.0, meta={"lineage": json.dumps(sibling)},
               **({"extra": torch.zeros(1)} if case == "sibling-keys" else {}))
    out = tmp_path / "mean.safetensors"
    args = [str(a), str(b), "--also", str(b if case == "twice" else c), "--out", str(out)]
    if case == "share":
        args += ["--later-share", "0.5"]
    with pytest.raises(SystemExit, match=message):
        mod.main(args)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("case, message", [
    ("keys", "hold different tensors"),
    ("shape", "conv.weight"),
    ("counter", "integer tensor differs"),
    ("no-lineage", "no lineage"),
    ("share", "strictly between 0 and 1"),
    ("overwrite", "would overwrite an input"),
    ("not-safetensors", "cannot read as safetensors"),
])
def test_bad_inputs_write_nothing(mod, tmp_path, case, message):
    meta = {"lineage": json.dumps([{"epochs": 1}])}
    a = _write(tmp_path / "a.safetensors", 1.0)
    b = _write(tmp_path / "b.safetensors", 3.0, meta=meta)
    out = tmp_path / "avg.safetensors"
    args = [str(a), str(b), "--out", str(out)]
    if case == "keys":
        _write(b, 3.0, meta=meta, extra=torch.zeros(1))
    elif case == "shape":
        save_file({"conv.weight": torch.zeros(3, 2), "bn.num_batches_tracked": torch.tensor(3),
                   "head.index": torch.tensor([7])}, str(b), metadata=meta)
    elif case == "counter":
        _write(b, 3.0, index=8, meta=meta)
    elif case == "no-lineage":
        _write(b, 3.0)
    elif case == "share":
        args += ["--later-share", "1"]
    elif case == "overwrite":
        args[-1] = str(b)
    else:
        a.write_bytes(b"not a safetensors file")
    with pytest.raises(SystemExit, match=message) as e:
        mod.main(args)
    if case not in ("overwrite",):
        assert not out.exists()
    assert not list(tmp_path.glob("*.tmp"))
    assert e.value.code not in (0, None)
