"""CrowdPose and MPII as the release lays them out: readers, metrics against the references."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.io import savemat

from starpose import MPII_SPEC, create_model
from starpose.cli import main
from starpose.data.mpii import mpii_samples
from starpose.evaluation.pckh import evaluate_mpii, pckh, pckh_from_mat

from conftest import CROWD_DET, CROWD_DIR, CROWD_JSON, MPII_DIR, MPII_JSON, shared


def _mpii_gt():
    anns = json.loads(shared(MPII_JSON).read_text())
    joints = np.array([a["joints"] for a in anns], dtype=np.float64)  # 1-based MATLAB pixels
    vis = np.array([a["joints_vis"] for a in anns], dtype=np.float64)
    return anns, joints, vis


def _write_gt_mat(path, joints, vis):
    """An mpii_gt_val.mat laid out like the official one for the fixture's people. The fixture
    ships no head boxes, so each is the square on the upper-neck→head-top segment."""
    neck, top = joints[:, 8], joints[:, 9]
    c = (neck + top) / 2
    half = np.linalg.norm(top - neck, axis=1)[:, None] / np.sqrt(2)
    heads = np.stack([c - half, c + half])  # 2 (corner), N, 2 (xy)
    savemat(str(path), {
        "dataset_joints": np.array([[n] for n in MPII_SPEC.keypoint_names], dtype=object).T,
        "jnt_missing": (1 - vis).T,  # 16, N
        "pos_gt_src": joints.transpose(1, 2, 0),  # 16, 2, N
        "headboxes_src": heads.transpose(0, 2, 1),  # 2, 2, N
    })
    return np.linalg.norm(heads[1] - heads[0], axis=1) * 0.6


def _reference_pckh(pred_1based, joints, vis, head_sizes, thr=0.5):
    """The standard MPII evaluation script's arithmetic, written out independently."""
    uv_err = np.linalg.norm(pred_1based - joints, axis=2).T  # 16, N
    scaled = uv_err / head_sizes[None] * vis.T
    jnt_count = vis.T.sum(1)
    less = (scaled <= thr) * vis.T
    per_joint = 100.0 * less.sum(1) / jnt_count
    mask = np.ones(16, bool)
    mask[6:8] = False
    ratio = np.where(mask, jnt_count, 0) / np.where(mask, jnt_count, 0).sum()
    return float((per_joint * ratio).sum()), per_joint


def test_mpii_reader_center_scale_protocol():
    anns, joints, _ = _mpii_gt()
    s = mpii_samples(shared(MPII_JSON), shared(MPII_DIR))
    assert len(s) == 5
    np.testing.assert_allclose(s[0].keypoints, joints[0] - 1)
    c = np.array(anns[0]["center"])
    np.testing.assert_allclose(s[0].center, [c[0] - 1, c[1] + 15 * anns[0]["scale"] - 1])
    np.testing.assert_allclose(s[0].scale, [anns[0]["scale"] * 200 * 1.25] * 2)


def test_pckh_ground_truth_is_100_shifted_lower_and_equals_reference(tmp_path):
    _, joints, vis = _mpii_gt()
    head_sizes = _write_gt_mat(tmp_path / "mpii_gt_val.mat", joints, vis)
    perfect = pckh_from_mat(joints - 1, tmp_path / "mpii_gt_val.mat")
    assert perfect["PCKh"] == pytest.approx(100.0) and perfect["PCKh@0.1"] == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    noisy = joints - 1 + rng.normal(scale=40.0, size=joints.shape)
    ours = pckh_from_mat(noisy, tmp_path / "mpii_gt_val.mat")
    ref, per_joint = _reference_pckh(noisy + 1, joints, vis, head_sizes)
    assert ours["PCKh"] < 100.0
    assert ours["PCKh"] == pytest.approx(ref, abs=1e-9)
    assert ours["Head"] == pytest.approx(per_joint[9], abs=1e-9)


def test_mpii_end_to_end_and_missing_mat(tmp_path):
    _, joints, vis = _mpii_gt()
    head_sizes = _write_gt_mat(tmp_path / "gt.mat", joints, vis)
    torch.manual_seed(0)
    model = create_model("starpose_t", spec=MPII_SPEC).eval()
    out = evaluate_mpii(model, MPII_SPEC, shared(MPII_JSON), shared(MPII_DIR), tmp_path / "gt.mat", flip=True)
    assert out["keypoints"].shape == (5, 16, 2)
    # The reported PCKh is the reference script's arithmetic on the returned (0-based) keypoints.
    for thr, name in ((0.5, "PCKh"), (0.1, "PCKh@0.1")):
        ref, per_joint = _reference_pckh(out["keypoints"] + 1, joints, vis, head_sizes, thr)
        assert out["metrics"][name] == pytest.approx(ref, abs=1e-9)
    ref, per_joint = _reference_pckh(out["keypoints"] + 1, joints, vis, head_sizes)
    assert out["metrics"]["Head"] == pytest.approx(per_joint[9], abs=1e-9)
    assert out["metrics"]["Ankle"] == pytest.approx((per_joint[0] + per_joint[5]) / 2, abs=1e-9)
    # Flip test: the mirrored crop's SimCC, flipped back and averaged, changes the keypoints.
    plain = evaluate_mpii(model, MPII_SPEC, shared(MPII_JSON), shared(MPII_DIR), tmp_path / "gt.mat", flip=False)
    assert np.abs(plain["keypoints"] - out["keypoints"]).max() > 1.0
    from starpose.data import DataError

    with pytest.raises(DataError, match="nope.mat.*not found"):
        evaluate_mpii(model, MPII_SPEC, shared(MPII_JSON), shared(MPII_DIR), tmp_path / "nope.mat", flip=False)


def test_mpii_bad_entries(tmp_path):
    anns = json.loads(shared(MPII_JSON).read_text())
    anns[1]["joints"] = anns[1]["joints"][:10]
    p = tmp_path / "mpii_val.json"
    p.write_text(json.dumps(anns))
    from starpose.data import DataError

    with pytest.raises(DataError, match=r"mpii_val\.json.*entry 1: joints has shape \(10, 2\)"):
        mpii_samples(p, shared(MPII_DIR))


def test_crowdpose_eval_cli_with_detections_in_release_layout(tmp_path):
    root = tmp_path / "data"
    ann = root / "crowdpose" / "annotations"
    ann.mkdir(parents=True)
    shutil.copytree(shared(CROWD_DIR), root / "crowdpose" / "images", ignore=shutil.ignore_patterns("*.json"))
    shutil.copy(shared(CROWD_JSON), ann / "mmpose_crowdpose_test.json")
    shutil.copy(shared(CROWD_DET), ann / "det_for_crowd_test_0.1_0.5.json")
    out = tmp_path / "m.json"
    res = tmp_path / "res.json"
    r = CliRunner().invoke(main, ["eval", "--dataset", "crowdpose", "--data-root", str(root), "--boxes", "det",
                                  "--weights", "random", "--variant", "starpose_t", "--no-flip", "--json", str(out),
                                  "--results", str(res)])
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())["metrics"]
    results = json.loads(res.read_text())
    assert len(results) > 0 and all(len(d["keypoints"]) == 14 * 3 for d in results)
    # The reported numbers are xtcocotools' crowd evaluation of the results file eval wrote.
    names = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP(E)", "AP(M)", "AP(H)")
    np.testing.assert_allclose([m[n] for n in names], _xtcoco_crowd_stats(shared(CROWD_JSON), results), atol=1e-9)
    # and that evaluation scores the labels themselves 1.0 (the fixture's people all fall in the
    # medium crowd band; the empty easy and hard bands are -1, pycocotools' "no people")
    gt = json.loads(shared(CROWD_JSON).read_text())
    perfect = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in gt["annotations"] if not a.get("iscrowd") and a.get("num_keypoints", 1) > 0]
    assert _xtcoco_crowd_stats(shared(CROWD_JSON), perfect)[[0, 6, 7, 8]] == pytest.approx([1.0, -1.0, 1.0, -1.0])
    r = CliRunner().invoke(main, ["eval", "--dataset", "coco", "--data-root", str(root), "--weights", "random"])
    assert r.exit_code != 0 and "person_keypoints_val2017.json" in r.output


def _xtcoco_crowd_stats(ann_file, results) -> np.ndarray:
    """CrowdPose's protocol, called directly: xtcocotools COCOeval('keypoints_crowd'), no areas."""
    import contextlib
    import io

    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    from starpose import CROWDPOSE_SPEC

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        ev = COCOeval(gt, gt.loadRes(results), "keypoints_crowd", np.asarray(CROWDPOSE_SPEC.sigmas), use_area=False)
        ev.params.useSegm = None
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return np.asarray(ev.stats, np.float64)
