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


@pytest.fixture(scope="module", autouse=True)
def _needs_the_coco_fixture() -> None:
    """make_golden.py reads a real pose from the COCO fixture in ../shared: skip, naming the
    missing folder, where it is absent."""
    from conftest import COCO_JSON, shared

    shared(COCO_JSON)


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
def fresh(_needs_the_coco_fixture) -> dict[str, str]:
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


# A second implementation of what the golden files hold, written from the definitions (MMPose's
# TopdownAffine and get_simcc_maximum) in plain Python, without starpose.processing: the files'
# numbers are checked against it, not against the functions that wrote them.


def _center_scale(x: float, y: float, w: float, h: float, in_w: int, in_h: int, pad: float):
    sw, sh = w * pad, h * pad
    if sw > sh * in_w / in_h:
        sh = sw * in_h / in_w
    else:
        sw = sh * in_w / in_h
    return [x + w / 2, y + h / 2], [sw, sh]


def _three_point_affine(center, scale, rot: float, out, inv: bool = False):
    """MMPose's construction: the box's centre, a point half a box width "up" (rotated by ``rot``)
    and a third at a right angle, mapped onto the same three points of the crop; solved exactly."""
    import numpy as np

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]])

    t = math.radians(rot)
    up = np.array([0.5 * scale[0] * math.sin(t), -0.5 * scale[0] * math.cos(t)])  # (0, -w/2) rotated by rot
    c = np.array(center, float)
    src = [c, c + up]
    dst = [np.array([out[0] / 2, out[1] / 2]), np.array([out[0] / 2, out[1] / 2 - out[0] / 2])]
    src.append(third(*src))
    dst.append(third(*dst))
    a, b = (dst, src) if inv else (src, dst)
    rows = np.array([[p[0], p[1], 1.0] for p in a])
    return np.linalg.solve(rows, np.array(b)).T  # 2x3: b = M @ [x, y, 1]


def _map(points, m):
    return [[m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2]] for x, y in points]


def _bilinear(img, m_inv, out_w: int, out_h: int):
    """cv2.warpAffine's INTER_LINEAR with a black constant border, per output pixel."""
    h, w = len(img), len(img[0])
    out = []
    for v in range(out_h):
        for u in range(out_w):
            x, y = _map([(u, v)], m_inv)[0]
            x0, y0 = math.floor(x), math.floor(y)
            fx, fy = x - x0, y - y0
            for ch in range(3):
                acc = 0.0
                for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
                    xi, yi = x0 + dx, y0 + dy
                    if 0 <= xi < w and 0 <= yi < h:
                        acc += wt * img[yi][xi][ch]
                out.append(min(255, max(0, round(acc))))
    return out


def _argmax_first(v):
    best = 0
    for i, x in enumerate(v):
        if x > v[best]:
            best = i
    return best


def test_fixture_values_equal_an_independent_implementation(fresh: dict[str, str]) -> None:
    import numpy as np

    proc = json.loads(fresh["processing.json"])
    tol = proc["tolerance"]["geometry_abs"]
    # A hand-computed case: box (281, 45, 219, 347), padding 1.25 → 273.75 x 433.75, widened to 3:4.
    first = proc["boxes_xywh"][0]
    assert first["bbox_xywh"] == [281.0, 45.0, 219.0, 347.0] and first["input_size"] == [192, 256]
    assert first["center"] == [390.5, 218.5] and first["scale"] == [433.75 * 0.75, 433.75]
    for case in proc["boxes_xywh"]:
        c, s = _center_scale(*case["bbox_xywh"], *case["input_size"], case["padding"])
        np.testing.assert_allclose(case["center"] + case["scale"], c + s, rtol=0, atol=tol)
    for case in proc["boxes_xyxy"]:
        x1, y1, x2, y2 = case["bbox_xyxy"]
        c, s = _center_scale(x1, y1, x2 - x1, y2 - y1, *case["input_size"], case["padding"])
        np.testing.assert_allclose(case["center"] + case["scale"], c + s, rtol=0, atol=tol)
    for case in proc["affine"]:
        m = _three_point_affine(case["center"], case["scale"], case["rot"], case["output_size"])
        m_inv = _three_point_affine(case["center"], case["scale"], case["rot"], case["output_size"], inv=True)
        np.testing.assert_allclose(case["matrix"], m, rtol=0, atol=tol)
        np.testing.assert_allclose(case["inverse"], m_inv, rtol=0, atol=tol)
        np.testing.assert_allclose(case["mapped"], _map(case["points"], m), rtol=0, atol=1e-6)
        np.testing.assert_allclose(case["mapped_back"], case["points"], rtol=0, atol=1e-6)
    w, h = proc["warp_image"]["width"], proc["warp_image"]["height"]
    flat = proc["warp_image"]["rgb_hwc"]
    img = [[flat[(y * w + x) * 3:(y * w + x) * 3 + 3] for x in range(w)] for y in range(h)]
    for case in proc["warp"]:
        out = case["output_size"]
        c, s = _center_scale(*case["bbox_xywh"], *out, 1.25)
        np.testing.assert_allclose(case["center"] + case["scale"], c + s, rtol=0, atol=tol)
        m = _three_point_affine(c, s, case["rot"], out)
        np.testing.assert_allclose(case["matrix"], m, rtol=0, atol=tol)
        ours = _bilinear(img, _three_point_affine(c, s, case["rot"], out, inv=True), *out)
        diff = np.abs(np.array(case["crop_hwc"]) - np.array(ours))
        assert diff.max() <= proc["tolerance"]["warp_max_abs"], (case["bbox_xywh"], int(diff.max()))
    for case in proc["normalize"]:
        hw = case["height"] * case["width"]
        want = [(case["rgb_hwc"][i * 3 + ch] - case["mean"][ch]) / case["std"][ch] for ch in range(3) for i in range(hw)]
        np.testing.assert_allclose(case["output_chw"], want, rtol=0, atol=proc["tolerance"]["normalize_abs"])
    for case in proc["simcc"]:
        k, (lx, ly), r = case["num_keypoints"], case["lengths"], case["split_ratio"]
        kps, scores = [], []
        for j in range(k):
            vx, vy = case["simcc_x"][j * lx:(j + 1) * lx], case["simcc_y"][j * ly:(j + 1) * ly]
            ix, iy = _argmax_first(vx), _argmax_first(vy)
            score = min(vx[ix], vy[iy])
            scores.append(score)
            kps += [ix / r, iy / r] if score > 0 else [-1.0, -1.0]
        np.testing.assert_allclose(case["scores"], scores, rtol=1e-6, atol=0)  # stored as float32
        np.testing.assert_allclose(case["keypoints"], kps, rtol=1e-6, atol=0)
        valid = [kps[2 * j:2 * j + 2] if scores[j] > 0 else None for j in range(k)]
        back = [_map([p], case["crop_to_image"])[0] if p else None for p in valid]
        got = case["keypoints_image"]
        for j, p in enumerate(back):
            if p is not None:
                np.testing.assert_allclose(got[2 * j:2 * j + 2], p, rtol=0, atol=1e-4)
    ties = next(c for c in proc["simcc"] if c["name"] == "ties_and_zero")
    assert ties["keypoints"][:4] == pytest.approx([1 / 3, 2 / 3, 0.0, 0.0])  # first maximum wins a tie
    assert ties["keypoints"][4:] == [-1.0, -1.0] and ties["scores"][2] == 0.0  # score 0 is invalid


def test_metadata_samples_agree_with_the_exporters_checker(fresh: dict[str, str]) -> None:
    """The apps' metadata cases are what the exporters write and reject: every valid sample
    passes mobile_export's own checker and every invalid one fails it at the same JSON path."""
    from mobile_export import metadata
    cases = json.loads(fresh["metadata_cases.json"])
    for case in cases["valid"]:
        metadata.parse_metadata(fresh[case["file"]], case["file"])
    for case in cases["invalid"]:
        with pytest.raises(metadata.MetadataError) as err:
            metadata.parse_metadata(case["text"], case["name"])
        assert case["error"] in str(err.value), (case["name"], str(err.value))
