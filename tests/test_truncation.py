"""Frame truncation (``train --truncate-prob``): the photo's edge moved into the person, as in the
COCO photos that cut people off. All data is made here."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from starpose import COCO_SPEC
from starpose.data.mix import load_mix, source_samples
from starpose.data.topdown import PersonSample, TopDownDataset
from starpose.data.transforms import AugmentConfig, flip_box, frame_truncation, random_flip

from test_mix import _mix_cfg, write_coco, write_mix

# 17 keypoints of a standing person, spread over a box (x 40..100, y 20..200) in a 160 x 240 photo
KPTS = np.stack([np.full(17, 70.0), np.linspace(25, 195, 17)], axis=1)
KPTS[1::2, 0] = 45
KPTS[2::2, 0] = 95
BOX = np.array([40.0, 20.0, 60.0, 180.0])
IMAGE = np.arange(240 * 160 * 3, dtype=np.uint32).reshape(240, 160, 3).astype(np.uint8)


def _always(**kw) -> AugmentConfig:
    return AugmentConfig(truncate_prob=1.0, **kw)


def test_the_edge_cuts_through_the_box_and_unlabels_what_is_beyond():
    vis = np.full(17, 2.0)
    vis[3] = 0  # unlabelled before: stays so
    sides = Counter()
    for seed in range(200):
        rng = np.random.default_rng(seed)
        img, box, kp, v, cut = frame_truncation(rng, IMAGE, BOX, KPTS, vis, _always())
        assert cut, "with p = 1 and a person well inside the photo the edge always moves"
        sides[cut] += 1
        h, w = img.shape[:2]
        assert np.shares_memory(img, IMAGE), "a view of the photo, not a copy"
        # the image is the photo from (left, top): the view's offset into the photo's memory
        offset = img.__array_interface__["data"][0] - IMAGE.__array_interface__["data"][0]
        top, left = offset // IMAGE.strides[0], offset % IMAGE.strides[0] // IMAGE.strides[1]
        assert np.array_equal(img, IMAGE[top:top + h, left:left + w])
        np.testing.assert_allclose(kp, KPTS - [left, top])
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)
        np.testing.assert_array_equal(v, np.where(inside, vis, 0))
        assert (v > 0).sum() >= 3
        assert v[3] == 0
        # the box: the labelled one clipped at the new edges, in the new image's coordinates
        x0, y0 = max(BOX[0] - left, 0), max(BOX[1] - top, 0)
        x1, y1 = min(BOX[0] + BOX[2] - left, w), min(BOX[1] + BOX[3] - top, h)
        np.testing.assert_allclose(box, [x0, y0, x1 - x0, y1 - y0])
        for side in cut:  # every edge named was moved into the box
            if side == "bottom":
                assert top + h < BOX[1] + BOX[3]
            elif side == "top":
                assert top > BOX[1]
            elif side == "left":
                assert left > BOX[0]
            else:
                assert left + w < BOX[0] + BOX[2]
    assert {c[0] for c in sides} == {"top", "bottom", "left", "right"}
    corners = sum(n for c, n in sides.items() if len(c) == 2)
    assert 30 <= corners <= 90, sides  # about 30% of 200
    assert all(set(c) not in ({"top", "bottom"}, {"left", "right"}) for c in sides), "two sides meet at a corner"


def test_nothing_changes_when_off_or_when_too_little_would_stay():
    vis = np.full(17, 2.0)
    rng = np.random.default_rng(0)
    out = frame_truncation(rng, IMAGE, BOX, KPTS, vis, AugmentConfig())
    assert out[0] is IMAGE and out[4] == ()
    few = np.zeros(17)
    few[[0, 16]] = 2  # two labelled keypoints: never three inside
    for seed in range(30):
        img, box, kp, v, cut = frame_truncation(np.random.default_rng(seed), IMAGE, BOX, KPTS, few, _always())
        assert cut == () and img is IMAGE and v is few
    # a person already cut off at the photo's bottom: a bottom cut below the photo's end changes nothing
    cfg = _always(truncate_second_side_prob=0.0, truncate_range=(0.95, 0.99))
    tall = np.array([40.0, 20.0, 60.0, 300.0])  # the box runs past the photo's 240 rows
    for seed in range(40):
        img, box, kp, v, cut = frame_truncation(np.random.default_rng(seed), IMAGE, tall, KPTS, np.full(17, 2.0), cfg)
        assert "bottom" not in cut


def test_flip_box_mirrors_as_random_flip_mirrors_the_centre():
    center = BOX[:2] + BOX[2:] / 2
    _, fc, fk, _, flipped = random_flip(np.random.default_rng(0), IMAGE, center, KPTS, np.ones(17),
                                        COCO_SPEC.flip_index, 1.0)
    fb = flip_box(BOX, IMAGE.shape[1])
    assert flipped
    np.testing.assert_allclose(fb[:2] + fb[2:] / 2, fc)
    np.testing.assert_allclose(fb[2:], BOX[2:])


def _samples(tmp_path):
    write_coco(tmp_path / "c", 2)
    mix = load_mix(write_mix(tmp_path, [{"name": "c", "format": "coco", "path": "{d}/c/person_keypoints.json"}]))
    return source_samples(mix.sources[0], COCO_SPEC)


def test_the_dataset_trains_on_the_cut_person(tmp_path):
    samples = _samples(tmp_path)
    only = dict(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0)
    plain = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig(**only))
    cut = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig(**only, truncate_prob=1.0))
    mean = torch.tensor(COCO_SPEC.mean).view(3, 1, 1)
    std = torch.tensor(COCO_SPEC.std).view(3, 1, 1)
    fewer = 0
    for key in range(20):
        a, b = plain[key], cut[key]
        labelled = b["target_weight"] > 0
        assert labelled.sum() >= 3
        assert not (labelled & (a["target_weight"] == 0)).any(), "nothing gains a label"
        if torch.allclose(a["center"], b["center"]):  # not cut: a corner would have left < 3 labelled
            torch.testing.assert_close(a["image"], b["image"])
            continue
        # the crop came from the clipped box
        fewer += int(labelled.sum() < (a["target_weight"] > 0).sum())
        # beyond the new edge the crop is black, as warpAffine fills outside a photo
        crop = (b["image"] * std + mean).round()
        black = (crop.abs() < 1).all(dim=0)
        assert black.any()
        # labelled keypoints map back into the photo part the crop holds: never into the black
        kc = b["keypoints_crop"][labelled].round().long()
        ok = (kc[:, 0] >= 0) & (kc[:, 0] < crop.shape[2]) & (kc[:, 1] >= 0) & (kc[:, 1] < crop.shape[1])
        kc = kc[ok]
        assert not black[kc[:, 1].clamp(0, crop.shape[1] - 1), kc[:, 0].clamp(0, crop.shape[2] - 1)].all()
    assert fewer >= 15, fewer  # the keypoints beyond the edge lost their labels


def test_other_draws_are_unchanged_by_the_option(tmp_path):
    samples = _samples(tmp_path)
    half = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig(truncate_prob=0.5))
    full = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig())
    changed = 0
    for key in range(60):
        a, b = half[key], full[key]
        if torch.equal(a["target_weight"], b["target_weight"]) and torch.allclose(a["center"], b["center"]):
            torch.testing.assert_close(a["image"], b["image"])
        else:
            changed += 1
    assert 15 <= changed <= 45, changed
    # MPII-style samples (a centre and scale, no box) are never cut
    s = samples[0]
    mpii = PersonSample(s.image_path, 1, center=np.array([60.0, 105.0]), scale=np.array([112.0, 237.0]),
                        keypoints=s.keypoints, visible=s.visible)
    a = TopDownDataset([mpii], COCO_SPEC, train=True, augment=AugmentConfig(truncate_prob=1.0))
    b = TopDownDataset([mpii], COCO_SPEC, train=True, augment=AugmentConfig())
    for key in range(5):
        torch.testing.assert_close(a[key]["image"], b[key]["image"])


def test_cli_and_training_record_it(tmp_path):
    from click.testing import CliRunner
    from safetensors import safe_open

    from starpose.cli import main
    from starpose.train.loop import train

    cfg = _mix_cfg(tmp_path, epochs=1)
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--truncate-prob", "0.5", "--no-aug",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 2 and "--no-aug" in r.output
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--truncate-prob", "1.5", "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 2 and "1.5" in r.output
    assert not (tmp_path / "w").exists()
    with pytest.raises(ValueError, match="truncate_prob"):
        train(cfg.override(truncate_prob=2.0), tmp_path / "bad", progress=False, log=lambda s: None)
    logs = []
    train(cfg.override(truncate_prob=0.25), tmp_path / "a", progress=False, log=logs.append)
    assert any("frame truncation" in line and "25%" in line for line in logs), logs
    with safe_open(str(tmp_path / "a" / "final.safetensors"), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["lineage"])[-1]["truncate_prob"] == 0.25


def test_cut_off_report_splits_people_at_the_photos_edge(tmp_path):
    from conftest import load_recipe

    mod = load_recipe("default_weights/cut_off.py")
    assert mod.edge_sides([0, 50, 10, 10], 100, 80, 3) == ("left",)
    assert mod.edge_sides([20, 20, 78, 58], 100, 80, 3) == ("bottom", "right")
    assert mod.edge_sides([20, 20, 10, 10], 100, 80, 3) == ()
    kp = np.zeros((17, 3))
    kp[5:] = np.stack([np.linspace(40, 60, 12), np.linspace(20, 90, 12), np.full(12, 2)], axis=1)
    people = [([30, 10, 40, 90], kp), ([130, 0, 40, 90], kp + [100, 0, 0]), ([220, 10, 40, 90], kp + [190, 0, 0])]
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 3600.0, "iscrowd": 0,
             "num_keypoints": 12, "keypoints": k.reshape(-1).tolist()} for i, (b, k) in enumerate(people)]
    anns.insert(1, {"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25.0, "iscrowd": 1,
                    "num_keypoints": 0, "keypoints": [0] * 51})  # a crowd region: a column of its own, not counted
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(json.dumps({"images": [{"id": 1, "file_name": "1.jpg", "width": 300, "height": 200}],
                                    "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    far = people[2][1] + [0, 40, 0]  # the third person's keypoints 40 px off: OKS near 0
    res = [{"image_id": 1, "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": 1.0}
           for k in (people[0][1], people[1][1], far)]
    res_file = tmp_path / "res.json"
    res_file.write_text(json.dumps(res))
    report = mod.cut_off_report(ann_file, res_file)
    assert report["cut off"]["people"] == 1 and report["cut off"]["mean_oks"] == pytest.approx(1.0)
    assert report["whole"]["people"] == 2
    assert report["whole"]["mean_oks"] == pytest.approx(0.5, abs=0.02)  # one exact, one far off
    assert report["whole"]["oks_above_0.5"] == 0.5
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    with pytest.raises(SystemExit, match="bad.json: no keypoint results"):
        mod.cut_off_report(ann_file, bad)
    res_file.write_text(json.dumps([{**res[0], "image_id": 77}]))
    with pytest.raises(SystemExit, match="image ids not in"):
        mod.cut_off_report(ann_file, res_file)
