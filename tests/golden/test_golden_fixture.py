"""The committed golden fixture equals a fresh regeneration from the numpy reference.

The Kotlin and Swift ports are tested against these files; if the reference changes and nobody
regenerates them, this test fails (floats compared to 1e-12 relative, so a platform's libm may
differ in the last bit; everything else exactly).
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).resolve().parent


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _diff(a: Any, b: Any, path: str = "$") -> str | None:
    """First difference between two JSON trees, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(a.keys() ^ b.keys())} differ"
        for k in a:
            d = _diff(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return f"{path}: {a!r} != {b!r}"
        return None if math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) else f"{path}: {a!r} != {b!r}"
    return None if a == b and type(a) is type(b) else f"{path}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def fresh() -> dict[str, str]:
    return _load_generator().build_golden()


def test_every_committed_file_matches_regeneration(fresh: dict[str, str]) -> None:
    committed = sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.json"))
    assert committed == sorted(fresh), "golden files differ from what make_golden.py writes"
    for rel, text in fresh.items():
        d = _diff(json.loads((GOLDEN / rel).read_text()), json.loads(text))
        assert d is None, f"{rel} is stale ({d}); run: python tests/golden/make_golden.py"


def test_diff_catches_a_perturbed_value(fresh: dict[str, str]) -> None:
    doc = json.loads(fresh["processing.json"])
    doc["affine"][1]["inverse"][0][2] += 1e-9
    assert _diff(json.loads(fresh["processing.json"]), doc) is not None
    doc = json.loads(fresh["tracking.json"])
    doc["roi"]["frames"][3]["lost"] = not doc["roi"]["frames"][3]["lost"]
    assert _diff(json.loads(fresh["tracking.json"]), doc) is not None


def test_generator_writes_atomically_and_check_mode(tmp_path: Path) -> None:
    gen = _load_generator()
    assert gen.main(["--out", str(tmp_path), "--check"]) == 1  # nothing there yet
    written = gen.write_golden(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == set(gen.build_golden())
    assert not list(tmp_path.rglob("*.tmp"))
    assert gen.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "tracking.json").write_text("{}")
    assert gen.main(["--out", str(tmp_path), "--check"]) == 1


def test_fixture_is_consistent_with_the_reference_functions(fresh: dict[str, str]) -> None:
    """Spot checks that the stored numbers mean what the README says they mean."""
    import numpy as np

    from starpose.processing import apply_affine, decode_simcc, invert_affine

    proc = json.loads(fresh["processing.json"])
    for case in proc["affine"]:
        m, inv = np.array(case["matrix"]), np.array(case["inverse"])
        np.testing.assert_allclose(invert_affine(m), inv, atol=1e-9)
        np.testing.assert_allclose(case["mapped_back"], case["points"], atol=1e-9)
        np.testing.assert_allclose(apply_affine(np.array(case["points"]), m), case["mapped"], atol=1e-9)
    for case in proc["simcc"]:
        k, (lx, ly) = case["num_keypoints"], case["lengths"]
        sx = np.array(case["simcc_x"], dtype=np.float32).reshape(k, lx)
        sy = np.array(case["simcc_y"], dtype=np.float32).reshape(k, ly)
        kp, sc = decode_simcc(sx, sy, case["split_ratio"])
        assert kp.reshape(-1).tolist() == case["keypoints"] and sc.tolist() == case["scores"]
    full = proc["simcc"][0]
    assert full["num_keypoints"] == 17 and full["lengths"] == [384, 512]
    assert sum(s <= 0 for s in full["scores"]) == 2  # the two planted invalid keypoints
    trk = json.loads(fresh["tracking.json"])
    lost = [f["lost"] for f in trk["roi"]["frames"]]
    assert any(lost) and not all(lost)
    assert trk["roi"]["frames"][-1]["next_box"] == [0.0, 0.0, *trk["roi"]["image_size"]]


def test_metadata_samples_agree_with_the_exporters_checker(fresh: dict[str, str]) -> None:
    """The apps' metadata cases are what the exporters write and reject: every valid sample
    passes mobile_export's own checker and every invalid one fails it at the same JSON path."""
    metadata = pytest.importorskip("mobile_export.metadata", reason="the exporters' package is not importable")
    cases = json.loads(fresh["metadata_cases.json"])
    for case in cases["valid"]:
        metadata.parse_metadata(fresh[case["file"]], case["file"])
    for case in cases["invalid"]:
        with pytest.raises(metadata.MetadataError) as err:
            metadata.parse_metadata(case["text"], case["name"])
        assert case["error"] in str(err.value), (case["name"], str(err.value))
