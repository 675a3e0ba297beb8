"""COCO-format top-down data: real fixture images, augmentations, SimCC targets, bad input."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from starpose import COCO_SPEC, CROWDPOSE_SPEC
from starpose.data import (AugmentConfig, CocoIndex, DataError, KLDiscretLoss, TopDownDataset, coco_det_samples,
                           coco_gt_samples, simcc_targets)
from starpose.processing import apply_affine, decode_simcc, invert_affine

from conftest import COCO_DET, COCO_DIR, COCO_JSON, CROWD_DIR, CROWD_JSON, shared


def test_coco_fixture_samples_and_crops():
    idx = CocoIndex(shared(COCO_JSON), COCO_SPEC)
    samples = coco_gt_samples(idx, shared(COCO_DIR))
    assert len(samples) == 12  # 14 people, 12 with keypoints
    ds = TopDownDataset(samples, COCO_SPEC, train=False, with_targets=True)
    item = ds[0]
    assert item["image"].shape == (3, 256, 192) and item["image"].dtype == torch.float32
    # Targets decode back to the labelled keypoints, which map back to image pixels.
    kpts, _ = decode_simcc(item["target_x"][None].numpy(), item["target_y"][None].numpy(), 2.0)
    vis = item["target_weight"].numpy() > 0
    back = apply_affine(kpts[0][vis], item["crop_to_image"].numpy())
    assert np.abs(back - samples[0].keypoints[vis]).max() <= 0.5 * 250 / 192 + 1e-6


def test_detection_boxes():
    idx = CocoIndex(shared(COCO_JSON), COCO_SPEC)
    dets = coco_det_samples(shared(COCO_DET), idx, shared(COCO_DIR))
    assert len(dets) == 118
    assert len(coco_det_samples(shared(COCO_DET), idx, shared(COCO_DIR), score_thr=0.5)) < 118


def test_crowdpose_fixture_loads_with_14_keypoints():
    samples = coco_gt_samples(CocoIndex(shared(CROWD_JSON), CROWDPOSE_SPEC), shared(CROWD_DIR))
    assert samples and samples[0].keypoints.shape == (14, 2)


def test_augmentation_is_deterministic_per_seed_epoch_index_and_varies():
    samples = coco_gt_samples(CocoIndex(shared(COCO_JSON), COCO_SPEC), shared(COCO_DIR))
    ds = TopDownDataset(samples, COCO_SPEC, train=True, seed=3)
    a, b = ds[1], ds[1]
    assert torch.equal(a["image"], b["image"])
    ds.set_epoch(1)
    c = ds[1]
    assert not torch.equal(a["image"], c["image"])
    # Whatever the augmentation, labelled keypoints land where the targets say.
    for item, i in ((a, 1), (c, 1)):
        w = item["target_weight"].numpy() > 0
        kc = item["keypoints_crop"].numpy()[w]
        kpts, _ = decode_simcc(item["target_x"][None].numpy(), item["target_y"][None].numpy(), 2.0)
        assert np.abs(kpts[0][w] - kc).max() <= 0.5


def test_photometric_augmentation_changes_pixels_not_geometry():
    """HSV / blur / coarse dropout act on the crop only: same warp, same targets, other pixels;
    deterministic per (seed, epoch, index); off unless asked for."""
    samples = coco_gt_samples(CocoIndex(shared(COCO_JSON), COCO_SPEC), shared(COCO_DIR))
    assert AugmentConfig().hsv_prob == AugmentConfig().dropout_prob == 0.0  # the release recipe's default
    plain = TopDownDataset(samples, COCO_SPEC, train=True, seed=5)
    strong = TopDownDataset(samples, COCO_SPEC, train=True, seed=5, augment=AugmentConfig.with_photometric())
    changed = 0
    for i in range(len(samples)):
        a, b = plain[i], strong[i]
        assert torch.equal(a["crop_to_image"], b["crop_to_image"]) and torch.equal(a["target_x"], b["target_x"])
        changed += int(not torch.equal(a["image"], b["image"]))
        assert torch.equal(b["image"], strong[i]["image"])
    assert changed == len(samples)  # hsv_prob 1.0: every crop's colours move
    from starpose.data.transforms import photometric

    crop = np.full((256, 192, 3), 100, np.uint8)
    holes = AugmentConfig(dropout_prob=1.0, dropout_size=(0.25, 0.25))
    out = photometric(np.random.default_rng(0), crop, holes)
    assert (out != 100).any(axis=-1).sum() == 64 * 48 and (crop == 100).all()  # one hole, input untouched


def test_flip_augmentation_swaps_left_and_right():
    samples = coco_gt_samples(CocoIndex(shared(COCO_JSON), COCO_SPEC), shared(COCO_DIR))
    plain = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig.none())[0]
    flipped = TopDownDataset(samples, COCO_SPEC, train=True,
                             augment=AugmentConfig(flip_prob=1.0, half_body_prob=0, shift_prob=0, scale_prob=0,
                                                   rotate_prob=0))[0]
    w = 192
    kp, kf = plain["keypoints_crop"].numpy(), flipped["keypoints_crop"].numpy()
    # left shoulder (5) in the flipped crop is the mirrored right shoulder (6) of the plain crop
    np.testing.assert_allclose(kf[5, 0], w - 1 - kp[6, 0], atol=1.5)
    np.testing.assert_allclose(kf[5, 1], kp[6, 1], atol=1e-3)


def test_simcc_targets_and_loss():
    tx, ty, w = simcc_targets(np.array([[50.0, 60.0], [500.0, 10.0]]), np.array([2, 2]), (192, 256))
    assert tx.shape == (2, 384) and ty.shape == (2, 512)
    assert tx[0].argmax() == 100 and ty[0].argmax() == 120
    assert w.tolist() == [1.0, 0.0]  # second keypoint far outside the crop
    np.testing.assert_allclose(tx[0].sum(), 1.0, atol=1e-3)
    loss = KLDiscretLoss()
    tgt = (torch.from_numpy(tx)[None], torch.from_numpy(ty)[None])
    good = loss((torch.log(tgt[0] + 1e-9) * 5, torch.log(tgt[1] + 1e-9) * 5), tgt, torch.from_numpy(w)[None])
    bad = loss((torch.zeros(1, 2, 384), torch.zeros(1, 2, 512)), tgt, torch.from_numpy(w)[None])
    assert good < bad


# --- bad input: every error names the file and the problem --------------------------------


def _copy_fixture(tmp_path):
    d = tmp_path / "coco"
    shutil.copytree(shared(COCO_DIR), d)
    return d, json.loads((d / "test_coco.json").read_text())


def test_json_without_annotations(tmp_path):
    d, data = _copy_fixture(tmp_path)
    del data["annotations"]
    p = d / "bad.json"
    p.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"bad\.json.*missing 'annotations'"):
        CocoIndex(p, COCO_SPEC)


def test_keypoints_of_wrong_length(tmp_path):
    d, data = _copy_fixture(tmp_path)
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    p = d / "short.json"
    p.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"short\.json.*keypoints has 48 values, expected 51"):
        CocoIndex(p, COCO_SPEC)
    with pytest.raises(DataError, match="has 17 keypoints, the crowdpose spec has 14"):
        CocoIndex(shared(COCO_JSON), CROWDPOSE_SPEC)


def test_box_outside_the_image(tmp_path):
    d, data = _copy_fixture(tmp_path)
    data["annotations"][0]["bbox"] = [5000, 10, 50, 80]
    p = d / "box.json"
    p.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"box\.json.*lies outside image"):
        CocoIndex(p, COCO_SPEC)


def test_unreadable_image(tmp_path):
    d, data = _copy_fixture(tmp_path)
    name = data["images"][0]["file_name"]
    (d / name).write_bytes(b"this is not a jpeg")
    samples = coco_gt_samples(CocoIndex(d / "test_coco.json", COCO_SPEC), d)
    ds = TopDownDataset(samples, COCO_SPEC)
    bad = next(i for i, s in enumerate(samples) if s.image_path.name == name)
    with pytest.raises(DataError, match=f"{name}.*cannot decode image"):
        ds[bad]
    (d / name).unlink()
    with pytest.raises(DataError, match=f"{name}.*not found"):
        coco_gt_samples(CocoIndex(d / "test_coco.json", COCO_SPEC), d)


def test_invalid_json_and_detections(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(DataError, match=r"broken\.json.*not valid JSON"):
        CocoIndex(p, COCO_SPEC)
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 123456, "bbox": [0, 0, 10, 10], "score": 1.0, "category_id": 1}]))
    with pytest.raises(DataError, match=r"dets\.json.*image_id 123456"):
        coco_det_samples(dets, CocoIndex(shared(COCO_JSON), COCO_SPEC), shared(COCO_DIR))
