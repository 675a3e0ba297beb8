"""starpose.evaluation.bootstrap: resampled OKS AP is pycocotools' AP on the resampled photos, resampled
PCK is lsp.pck's, and the paired comparison tells a real difference from none (its own small data);
recipes/default_weights/compare.py on the real validation people when ../shared/people is there."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from starpose import COCO_SPEC
from starpose.data.lsp import pck
from starpose.evaluation import coco_keypoint_eval
from starpose.evaluation.bootstrap import (OksResampler, compare, pck_counts, people_of, photo_draws,
                                           resampled_pck)

from conftest import RECIPES, load_recipe, shared

K = 17


def _people(n_photos: int = 6, seed: int = 0) -> dict:
    """A COCO keypoints json of ``n_photos`` photos with one to three labelled people each."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(1, n_photos + 1):
        images.append({"id": i, "file_name": f"{i:04d}.jpg", "width": 640, "height": 480})
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(20, 300), rng.uniform(20, 200)
            w, h = rng.uniform(60, 200), rng.uniform(120, 260)
            kp = np.stack([rng.uniform(x, x + w, K), rng.uniform(y, y + h, K), np.full(K, 2.0)], 1)
            kp[rng.random(K) < 0.2] = 0.0  # some unlabelled
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0, "num_keypoints": int((kp[:, 2] > 0).sum()),
                         "keypoints": kp.reshape(-1).tolist()})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_SPEC.keypoint_names), "skeleton": []}]}


def _results(gt: dict, noise: float, seed: int) -> list[dict]:
    """One prediction per labelled person: the labels moved by ``noise`` pixels (Gaussian)."""
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"], np.float64).reshape(K, 3)
        xy = kp[:, :2] + rng.normal(0, noise, (K, 2))
        out.append({"image_id": a["image_id"], "category_id": 1, "score": float(rng.uniform(0.5, 1.0)),
                    "keypoints": np.concatenate([xy, np.ones((K, 1))], 1).reshape(-1).tolist()})
    return out


def _duplicated(gt: dict, results: list[dict], photos: list[int]) -> tuple[dict, list[dict]]:
    """The json and results of the multiset ``photos``, every copy of a photo under a new id."""
    images, anns, res = [], [], []
    for n, p in enumerate(photos, start=1):
        images.append({**next(im for im in gt["images"] if im["id"] == p), "id": n})
        for a in gt["annotations"]:
            if a["image_id"] == p:
                anns.append({**copy.deepcopy(a), "id": len(anns) + 1, "image_id": n})
        res += [{**r, "image_id": n} for r in results if r["image_id"] == p]
    return {**gt, "images": images, "annotations": anns}, res


def test_ap_of_every_photo_is_pycocotools_ap(tmp_path):
    gt = _people()
    res = _results(gt, noise=6.0, seed=1)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    expected = coco_keypoint_eval(tmp_path / "gt.json", res, COCO_SPEC.sigmas)["AP"]
    assert 0.05 < expected < 0.95  # neither end: the test can see a wrong AP
    assert OksResampler(gt, res, COCO_SPEC.sigmas).ap() == pytest.approx(expected, abs=1e-12)


def test_resampled_ap_is_pycocotools_ap_of_the_resampled_json(tmp_path):
    gt = _people(n_photos=7, seed=3)
    res = _results(gt, noise=5.0, seed=4)
    r = OksResampler(gt, res, COCO_SPEC.sigmas)
    rng = np.random.default_rng(0)
    seen = set()
    for photos in photo_draws([a["image_id"] for a in gt["annotations"]], 4, rng):
        photos = [int(p) for p in photos]
        dgt, dres = _duplicated(gt, res, photos)
        path = tmp_path / "dup.json"
        path.write_text(json.dumps(dgt))
        expected = coco_keypoint_eval(path, dres, COCO_SPEC.sigmas)["AP"]
        assert r.ap(photos) == pytest.approx(expected, abs=1e-12)
        seen.add(round(expected, 6))
    assert len(seen) > 1  # the draws differ, and so do their APs
    assert r.ap() == pytest.approx(coco_keypoint_eval(_write(tmp_path, gt), res, COCO_SPEC.sigmas)["AP"], abs=1e-12)


def _write(tmp_path: Path, gt: dict) -> Path:
    path = tmp_path / "gt_again.json"
    path.write_text(json.dumps(gt))
    return path


def test_unknown_photo_and_empty_results_are_refused():
    gt = _people()
    r = OksResampler(gt, _results(gt, 3.0, 0), COCO_SPEC.sigmas)
    with pytest.raises(ValueError, match="photo 999 is not in the ground truth"):
        r.ap([1, 999])
    with pytest.raises(ValueError, match="no keypoint results"):
        OksResampler(gt, [], COCO_SPEC.sigmas)
    with pytest.raises(ValueError, match="at least 1"):
        photo_draws([1, 2], 0, np.random.default_rng(0))


def test_pck_counts_add_up_to_lsp_pck():
    rng = np.random.default_rng(5)
    n = 40
    gt = rng.uniform(0, 200, (n, K, 2))
    vis = (rng.random((n, K)) > 0.15).astype(np.int64) * 2
    vis[3, [5, 6, 11, 12]] = 0  # a person without a torso: skipped by both
    pred = gt + rng.normal(0, 12, (n, K, 2))
    hits, lab = pck_counts(pred, gt, vis)
    assert lab[3] == 0
    assert resampled_pck(hits, lab, range(n)) == pytest.approx(pck(pred, gt, vis, 0.2)["PCK@0.2"], abs=1e-12)
    people = people_of(np.array([4, 4, 9]), list(range(n)))  # one person a photo; photo 4 drawn twice
    assert people.tolist() == [4, 4, 9]
    assert resampled_pck(hits, lab, people) == pytest.approx(100.0 * (2 * hits[4] + hits[9]) / (2 * lab[4] + lab[9]))


def _sets(gt, res_a, res_b, pose):
    return [{"name": "coco", "metric": "oks", "photos": [a["image_id"] for a in gt["annotations"]], "gt": gt,
             "sigmas": COCO_SPEC.sigmas, "results_a": res_a, "results_b": res_b},
            {"name": "lsp", "metric": "pck", "photos": list(range(len(pose["gt"]))), **pose}]


def test_paired_comparison_tells_better_from_same():
    gt = _people(n_photos=12, seed=7)
    rng = np.random.default_rng(8)
    lgt = rng.uniform(0, 200, (60, K, 2))
    vis = np.full((60, K), 2)
    rough = lgt + rng.normal(0, 25, lgt.shape)
    fine = lgt + rng.normal(0, 3, lgt.shape)
    noisy = _results(gt, 12.0, 1)
    exact = _results(gt, 0.5, 2)

    same, score = compare(_sets(gt, noisy, noisy, {"gt": lgt, "visible": vis, "pred_a": rough, "pred_b": rough}),
                          resamples=50, seed=0)
    assert all(np.all(c.diffs == 0.0) for c in same) and np.all(score.diffs == 0.0)
    assert score.summary()["b_ahead_share"] == 0.0

    better, score = compare(_sets(gt, noisy, exact, {"gt": lgt, "visible": vis, "pred_a": rough, "pred_b": fine}),
                            resamples=200, seed=0)
    for c in better:
        lo, hi = c.summary()["interval_90"]
        assert c.b > c.a and lo > 0 and c.summary()["b_ahead_share"] == 1.0
    assert score.b - score.a == pytest.approx(np.mean([c.b - c.a for c in better]))

    worse, _ = compare(_sets(gt, exact, noisy, {"gt": lgt, "visible": vis, "pred_a": fine, "pred_b": rough}),
                       resamples=200, seed=0)
    for w, b in zip(worse, better):  # swapping A and B: the same resamples, the differences negated
        np.testing.assert_allclose(w.diffs, -b.diffs, atol=1e-12)


def test_fixture_kept_out_of_the_score_and_bad_metric_refused():
    gt = _people(seed=9)
    a, b = _results(gt, 10.0, 1), _results(gt, 2.0, 2)
    sets = [{"name": "coco", "metric": "oks", "photos": [x["image_id"] for x in gt["annotations"]], "gt": gt,
             "sigmas": COCO_SPEC.sigmas, "results_a": a, "results_b": a},
            {"name": "fixture", "metric": "oks", "photos": [x["image_id"] for x in gt["annotations"]], "gt": gt,
             "sigmas": COCO_SPEC.sigmas, "results_a": a, "results_b": b, "in_score": False}]
    comps, score = compare(sets, resamples=20)
    assert comps[1].b > comps[1].a and score.b == score.a and np.all(score.diffs == 0.0)
    with pytest.raises(ValueError, match="unknown metric 'mse'"):
        compare([{**sets[0], "metric": "mse"}], resamples=2)


COMPARE = RECIPES / "default_weights" / "compare.py"


@pytest.fixture(scope="module")
def compare_script():
    return load_recipe("default_weights/compare.py")


def test_compare_script_refuses_bad_arguments(compare_script, tmp_path):
    with pytest.raises(SystemExit, match="weights B: .*nope.safetensors not found"):
        compare_script.main([str(COMPARE), str(tmp_path / "nope.safetensors"), "--people", str(tmp_path)])
    with pytest.raises(SystemExit, match="--resamples must be at least 1"):
        compare_script.main([str(COMPARE), str(COMPARE), "--resamples", "0"])


@pytest.mark.slow
def test_compare_script_packaged_against_itself(compare_script, tmp_path):
    """The packaged weights against themselves on the real validation people: every difference 0, and
    A's numbers are package.py's (the model card's)."""
    from starpose.models.weights import weights_path

    people = shared("people")
    fixture = shared("fixtures/coco")
    w = weights_path("starpose_t")
    out = tmp_path / "cmp.json"
    summary = compare_script.main([str(w), str(w), "--people", str(people), "--fixture", str(fixture),
                                   "--resamples", "20", "--out", str(out)])
    assert json.loads(out.read_text()) == summary
    assert summary["score"]["b_minus_a"] == 0.0 and summary["score"]["interval_90"] == [0.0, 0.0]
    assert set(summary["sets"]) >= {"lspet", "stock17", "coco", "fixture"}
    from safetensors import safe_open
    with safe_open(str(w), "pt") as f:
        packaged = json.loads(f.metadata()["summary"])["validation"]
    for name, m in summary["sets"].items():
        key = "AP" if name != "lspet" else "PCK@0.2"
        assert m["a"] == pytest.approx(packaged[name][key] / (100.0 if name == "lspet" else 1.0), abs=1e-4)
    # One pass per person (--no-flip): A's numbers are package.py's no-flip ones.
    plain = compare_script.main([str(w), str(w), "--people", str(people), "--fixture", str(fixture),
                                 "--resamples", "5", "--no-flip"])
    assert plain["flip"] is False and summary["flip"] is True
    assert plain["score"]["b_minus_a"] == 0.0
    for name, m in plain["sets"].items():
        key = "no_flip_AP" if name != "lspet" else "no_flip_PCK@0.2"
        assert m["a"] == pytest.approx(packaged[name][key] / (100.0 if name == "lspet" else 1.0), abs=1e-4)


def test_package_refuses_a_missing_against_file_before_evaluating(tmp_path):
    from starpose.models.weights import weights_path

    package = load_recipe("default_weights/package.py")
    with pytest.raises(SystemExit, match=r"--against: .*gone\.safetensors not found"):
        package.main([str(weights_path("starpose_t")), "--people", str(tmp_path), "--dry-run",
                      "--against", str(tmp_path / "gone.safetensors")])


def test_package_warns_when_the_score_falls_with_or_without_flip():
    package = load_recipe("default_weights/package.py")

    def comp(flip_d, plain_d):
        def s(d):
            return {"a": 0.5, "b": 0.5 + d, "b_minus_a": d, "b_ahead_share": 0.9 if d > 0 else 0.1}
        return {"a": "old.safetensors", "b": "new.safetensors", "score": s(flip_d), "no_flip": {"score": s(plain_d)}}

    assert package.step_warnings(None) == []
    assert package.step_warnings(comp(+0.003, +0.001)) == []
    assert package.step_warnings(comp(+0.003, 0.0)) == []
    (w,) = package.step_warnings(comp(+0.003, -0.004))
    assert "without flip" in w and "-0.0040" in w and "old.safetensors" in w
    (w,) = package.step_warnings(comp(0.0, +0.002))
    assert "with the flip test" in w
    assert len(package.step_warnings(comp(-0.001, -0.001))) == 2
    # A summary written before the no-flip comparison existed still reads.
    old = comp(+0.003, +0.001)
    del old["no_flip"]
    assert package.step_warnings(old) == []
