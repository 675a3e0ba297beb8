"""OKS AP through pycocotools / xtcocotools on the real fixtures: exact, and sensitive."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from starpose import COCO_SPEC, CROWDPOSE_SPEC
from starpose.evaluation import coco_keypoint_eval, oks_nms, write_results

from conftest import COCO_DIR, COCO_JSON, CROWD_JSON, shared


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


def _tiny_coco(tmp_path):
    """Three people, one per photo (no pixels needed: only the labels are scored), one of them
    leaving the right eye unlabelled; nobody labels the left ear."""
    rng = np.random.default_rng(3)
    images, anns = [], []
    for i, area in enumerate((900.0, 4000.0, 12000.0), start=1):
        k = np.zeros((17, 3))
        k[:, 0], k[:, 1], k[:, 2] = rng.uniform(10, 90, 17), rng.uniform(10, 190, 17), 2
        k[3, 2] = 0  # left ear: nobody
        if i == 2:
            k[2, 2] = 0  # right eye: not this person
        k[k[:, 2] == 0, :2] = 0
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 200})
        anns.append({"id": 10 + i, "image_id": i, "category_id": 1, "iscrowd": 0, "area": area,
                     "bbox": [5.0, 5.0, 90.0, 190.0], "num_keypoints": int((k[:, 2] > 0).sum()),
                     "keypoints": k.reshape(-1).tolist()})
    path = tmp_path / "people.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_SPEC.keypoint_names)}]}))
    return path, anns


def test_keypoint_similarity_is_the_per_keypoint_part_of_pycocotools_oks(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from starpose.evaluation.oks import keypoint_similarity

    path, anns = _tiny_coco(tmp_path)
    gt = np.stack([np.asarray(a["keypoints"], np.float64).reshape(17, 3) for a in anns])
    offsets = np.random.default_rng(4).normal(0.0, 3.0, gt[:, :, :2].shape)
    offsets[:, 0] = 0.0  # the nose exact for everyone
    pred = gt[:, :, :2] + offsets
    areas = np.array([a["area"] for a in anns])
    mean, count = keypoint_similarity(pred, gt[:, :, :2], gt[:, :, 2], areas, COCO_SPEC.sigmas)
    assert count.tolist() == [3, 3, 2, 0] + [3] * 13
    assert mean[0] == pytest.approx(1.0) and np.isnan(mean[3])
    assert np.all((mean[np.isfinite(mean)] > 0) & (mean[np.isfinite(mean)] <= 1))
    # each person's OKS, as pycocotools computes it for the pair, is the mean of their labelled terms
    results = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
                "keypoints": np.concatenate([p, np.ones((17, 1))], 1).reshape(-1).tolist()} for a, p in zip(anns, pred)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
        ev = COCOeval(coco, coco.loadRes(results), "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(COCO_SPEC.sigmas)
        ev.evaluate()
    for i, a in enumerate(anns):
        m, _ = keypoint_similarity(pred[i:i + 1], gt[i:i + 1, :, :2], gt[i:i + 1, :, 2], areas[i:i + 1], COCO_SPEC.sigmas)
        assert np.nanmean(m) == pytest.approx(float(ev.ious[(a["image_id"], 1)][0, 0]), rel=1e-12)
    # the same people, one pixel further off everywhere: every labelled keypoint scores lower
    worse, _ = keypoint_similarity(pred + np.sign(offsets + 1e-9), gt[:, :, :2], gt[:, :, 2], areas, COCO_SPEC.sigmas)
    finite = np.isfinite(mean)
    assert np.all(worse[finite] < mean[finite])


def test_eval_reports_per_keypoint_similarity_with_labelled_boxes_only(tmp_path):
    from click.testing import CliRunner

    from starpose.cli import main

    anns = [a for a in json.loads(shared(COCO_JSON).read_text())["annotations"]
            if not a.get("iscrowd") and a["num_keypoints"] > 0]
    labelled = (np.stack([np.asarray(a["keypoints"]).reshape(17, 3)[:, 2] for a in anns]) > 0).sum(0)
    runner = CliRunner()
    out = tmp_path / "gt.json"
    r = runner.invoke(main, ["eval", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)),
                             "--weights", "random", "--no-flip", "--json", str(out)])
    assert r.exit_code == 0, r.output
    table = json.loads(out.read_text())["per_keypoint"]
    assert list(table) == list(COCO_SPEC.keypoint_names)
    assert [v["labelled"] for v in table.values()] == labelled.tolist()
    assert all(0.0 <= v["similarity"] <= 1.0 for v in table.values())
    assert "per keypoint" in r.output and f"left_eye        {table['left_eye']['similarity']:.3f}" in r.output
    det = tmp_path / "det.json"
    r = runner.invoke(main, ["eval", "--ann-file", str(shared(COCO_JSON)), "--img-dir", str(shared(COCO_DIR)),
                             "--boxes", "det", "--det-file", str(shared(COCO_DIR) / "test_coco_det_AP_H_56.json"),
                             "--weights", "random", "--no-flip", "--json", str(det)])
    assert r.exit_code == 0, r.output
    assert "per_keypoint" not in json.loads(det.read_text()) and "per keypoint" not in r.output


def test_eval_and_train_refuse_a_file_with_no_one_to_score(tmp_path):
    """An annotation file whose people are all crowds or unlabelled (or --ids photos without people) is an
    error naming the file, not an AP table of zeros; train checks its validation file before it starts."""
    from click.testing import CliRunner

    from starpose.cli import main

    def person(ann_id, image_id, labelled, crowd=0):
        kpts = [0.0] * 51
        if labelled:
            kpts[15:18] = [20.0, 30.0, 2]  # left shoulder
        return {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": [10, 10, 40, 60], "area": 2400,
                "iscrowd": crowd, "num_keypoints": int(labelled), "keypoints": kpts}

    cats = [{"id": 1, "name": "person", "keypoints": list(COCO_SPEC.keypoint_names), "skeleton": []}]
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in (1, 2)]
    nobody = tmp_path / "nobody.json"
    nobody.write_text(json.dumps({"images": images, "annotations": [person(1, 1, False), person(2, 2, True, crowd=1)],
                                  "categories": cats}))
    runner = CliRunner()
    for boxes in ("gt", "ours"):
        r = runner.invoke(main, ["eval", "--ann-file", str(nobody), "--img-dir", str(tmp_path), "--weights", "random",
                                 "--boxes", boxes])
        assert r.exit_code != 0 and f"{nobody}: no labelled people in it" in r.output, r.output
        assert "AP50" not in r.output
    some = tmp_path / "some.json"
    some.write_text(json.dumps({"images": images, "annotations": [person(1, 1, False), person(2, 2, True)],
                                "categories": cats}))
    r = runner.invoke(main, ["eval", "--ann-file", str(some), "--img-dir", str(tmp_path), "--weights", "random",
                             "--ids", "1"])
    assert r.exit_code != 0 and f"{some}: the 1 photos of --ids hold no labelled people" in r.output, r.output
    r = runner.invoke(main, ["train", "--ann-file", str(some), "--img-dir", str(tmp_path), "--val-ann-file",
                             str(nobody), "--val-img-dir", str(tmp_path), "--epochs", "1", "--work-dir",
                             str(tmp_path / "run")])
    assert r.exit_code != 0 and f"{nobody}: no labelled people in it" in r.output, r.output
    assert not (tmp_path / "run").exists()
