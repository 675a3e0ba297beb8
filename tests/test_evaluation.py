"""OKS AP through pycocotools / xtcocotools on the real fixtures: exact, and sensitive."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from starpose import COCO_SPEC, CROWDPOSE_SPEC
from starpose.evaluation import coco_keypoint_eval, oks_nms, write_results

from conftest import COCO_JSON, CROWD_JSON, shared


def gt_as_results(path, shift=(0.0, 0.0)):
    data = json.loads(path.read_text())
    out = []
    for ann in data["annotations"]:
        if ann.get("iscrowd") or ann["num_keypoints"] == 0:
            continue
        k = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        k[:, 0] += shift[0]
        k[:, 1] += shift[1]
        k[:, 2] = 1.0
        out.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": 1.0})
    return out


def test_ground_truth_scores_ap_one():
    m = coco_keypoint_eval(shared(COCO_JSON), gt_as_results(shared(COCO_JSON)), COCO_SPEC.sigmas)
    assert m["AP"] == pytest.approx(1.0) and m["AR"] == pytest.approx(1.0)


def test_shifted_keypoints_score_strictly_lower():
    perfect = coco_keypoint_eval(shared(COCO_JSON), gt_as_results(shared(COCO_JSON)), COCO_SPEC.sigmas)["AP"]
    small = coco_keypoint_eval(shared(COCO_JSON), gt_as_results(shared(COCO_JSON), (4, 3)), COCO_SPEC.sigmas)["AP"]
    large = coco_keypoint_eval(shared(COCO_JSON), gt_as_results(shared(COCO_JSON), (15, 10)), COCO_SPEC.sigmas)["AP"]
    assert perfect > small > large


def test_equals_pycocotools_called_directly(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    res = gt_as_results(shared(COCO_JSON), (5, -4))
    path = write_results(res, tmp_path / "res.json")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(shared(COCO_JSON)))
        ev = COCOeval(gt, gt.loadRes(str(path)), "keypoints")
        ev.evaluate(), ev.accumulate(), ev.summarize()
    ours = coco_keypoint_eval(shared(COCO_JSON), path, COCO_SPEC.sigmas)
    np.testing.assert_allclose(list(ours.values()), ev.stats, atol=1e-12)


def test_crowdpose_mode_uses_xtcocotools():
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    perfect = coco_keypoint_eval(shared(CROWD_JSON), gt_as_results(shared(CROWD_JSON)), CROWDPOSE_SPEC.sigmas, mode="crowdpose")
    assert perfect["AP"] == pytest.approx(1.0)
    res = gt_as_results(shared(CROWD_JSON), (6, 2))
    shifted = coco_keypoint_eval(shared(CROWD_JSON), res, CROWDPOSE_SPEC.sigmas, mode="crowdpose")
    assert shifted["AP"] < 1.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(shared(CROWD_JSON)))
        ev = COCOeval(gt, gt.loadRes(res), "keypoints_crowd", np.array(CROWDPOSE_SPEC.sigmas), use_area=False)
        ev.params.useSegm = None
        ev.evaluate(), ev.accumulate(), ev.summarize()
    np.testing.assert_allclose(list(shifted.values()), ev.stats, atol=1e-12)
    assert set(shifted) >= {"AP(E)", "AP(M)", "AP(H)"}


def test_oks_nms_drops_duplicates_keeps_distinct():
    base = np.zeros((17, 3))
    base[:, 0], base[:, 1], base[:, 2] = np.arange(17) * 5, 100, 0.9
    dup = base.copy()
    dup[:, 0] += 0.5
    far = base.copy()
    far[:, 1] += 300
    poses = [{"keypoints": base, "score": 0.9, "area": 5000.0}, {"keypoints": dup, "score": 0.8, "area": 5000.0},
             {"keypoints": far, "score": 0.7, "area": 5000.0}]
    assert oks_nms(poses, 0.9, COCO_SPEC.sigmas) == [0, 2]
