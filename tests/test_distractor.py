"""Neighbours (``train --distractor-prob``): an unlabelled person from another photo pasted beside
the person of a training crop, as in COCO's crowded photos. All data is made here."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from starpose import COCO_SPEC
from starpose.data.topdown import PersonSample, TopDownDataset
from starpose.data.transforms import AugmentConfig, paste_distractor, person_mask

from test_mix import _mix_cfg
from test_truncation import _samples

NAMES, SKELETON = COCO_SPEC.keypoint_names, COCO_SPEC.skeleton
# a standing person in a 192 x 256 crop: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
PERSON = np.array([[96, 40], [92, 36], [100, 36], [88, 38], [104, 38], [80, 70], [112, 70], [72, 105], [120, 105],
                   [70, 135], [122, 135], [86, 140], [106, 140], [84, 185], [108, 185], [84, 225], [108, 225]],
                  dtype=np.float64)


def test_the_mask_covers_the_body_and_nothing_far_from_it():
    m = person_mask((256, 192), PERSON, np.full(17, 2.0), NAMES, SKELETON, 200.0)
    assert m.dtype == np.float32 and m.shape == (256, 192) and 0 <= m.min() and m.max() <= 1
    for x, y in PERSON.astype(int):
        assert m[y, x] > 0.9, (x, y)  # every labelled keypoint
    for a, b in SKELETON:  # and the middle of every limb
        x, y = ((PERSON[a] + PERSON[b]) / 2).astype(int)
        assert m[y, x] > 0.9, (a, b)
    assert m[96, 96] > 0.9  # the torso between shoulders and hips
    assert m[:12, :].max() == 0 and m[:, :40].max() == 0 and m[:, 160:].max() == 0
    # no face labelled (LSPET): the head is put above the shoulders along the body's axis
    noface = np.full(17, 2.0)
    noface[:5] = 0
    m2 = person_mask((256, 192), PERSON, noface, NAMES, SKELETON, 200.0)
    assert m2[58, 96] > 0.9 and m2[:12, :].max() == 0
    # fewer than 4 labelled keypoints: an ellipse in the box when there is one, else nothing
    few = np.zeros(17)
    few[[0, 16]] = 2
    e = person_mask((256, 192), PERSON, few, NAMES, SKELETON, 200.0, box=np.array([60.0, 30.0, 70.0, 200.0]))
    assert e[130, 95] == 1 and e[130, 20] == 0 and e[5, 95] == 0
    assert person_mask((256, 192), PERSON, few, NAMES, SKELETON, 200.0).max() == 0


def _other():
    """A 300 x 200 photo: a grey background, a red person (box 60..140 x 40..260) drawn in it."""
    img = np.full((300, 200, 3), 90, np.uint8)
    kp = PERSON * [80 / 50, 220 / 190] + [60 - 70 * 80 / 50, 40 - 35 * 220 / 190]
    m = person_mask((300, 200), kp, np.full(17, 2.0), NAMES, SKELETON, 220.0)
    img[m > 0.5] = (230, 20, 20)
    return img, np.array([60.0, 40.0, 80.0, 220.0]), kp, np.full(17, 2.0)


def test_the_neighbour_stands_beside_and_behind_the_person():
    crop = np.full((256, 192, 3), 30, np.uint8)
    crop[person_mask((256, 192), PERSON, np.full(17, 2.0), NAMES, SKELETON, 200.0) > 0.5] = (20, 20, 230)
    img, box, kp, vis = _other()
    behind = AugmentConfig(distractor_prob=1.0, distractor_behind_prob=1.0)
    sides = set()
    for seed in range(40):
        out = paste_distractor(np.random.default_rng(seed), crop, PERSON, np.full(17, 2.0), 200.0,
                               img, box, kp, vis, NAMES, SKELETON, behind)
        assert out.shape == crop.shape and out.dtype == np.uint8
        assert np.array_equal(crop[0, 0], [30, 30, 30]), "the input crop is not modified"
        red = (out[..., 0] > 150) & (out[..., 2] < 100)
        assert red.sum() > 500, "a person-sized neighbour is pasted"
        # behind: the person's keypoints keep their own (blue) pixels
        for x, y in PERSON.astype(int):
            assert out[y, x, 2] > 200 and out[y, x, 0] < 60, (seed, x, y)
        cols = np.nonzero(red.any(0))[0]
        sides.add("right" if cols.mean() > 96 else "left")
        # only the silhouette is copied: the other photo's grey background is never pasted
        grey = (np.abs(out.astype(int) - 90) < 12).all(-1)
        assert grey.sum() < 0.02 * grey.size, grey.sum()
    assert sides == {"left", "right"}
    # in front: it may cover the person's keypoints now and then
    front = AugmentConfig(distractor_prob=1.0, distractor_behind_prob=0.0, distractor_offset=(0.05, 0.1))
    covered = 0
    for seed in range(20):
        out = paste_distractor(np.random.default_rng(seed), crop, PERSON, np.full(17, 2.0), 200.0,
                               img, box, kp, vis, NAMES, SKELETON, front)
        covered += sum(out[y, x, 0] > 150 for x, y in PERSON.astype(int))
    assert covered > 20


def _plain(**kw) -> AugmentConfig:
    return AugmentConfig(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0, **kw)


def test_the_dataset_pastes_without_touching_labels_or_other_draws(tmp_path):
    samples = _samples(tmp_path)
    full = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig())
    half = TopDownDataset(samples, COCO_SPEC, train=True, augment=AugmentConfig(distractor_prob=0.5))
    changed = 0
    for key in range(60):
        a, b = full[key], half[key]
        for name in ("target_x", "target_y", "target_weight", "keypoints_crop", "center", "scale"):
            torch.testing.assert_close(a[name], b[name])
        changed += not torch.equal(a["image"], b["image"])
        # reproducible: the same key gives the same crop
        torch.testing.assert_close(half[key]["image"], b["image"])
    assert 15 <= changed <= 45, changed
    # a data set of one person has no one to paste
    one = TopDownDataset(samples[:1], COCO_SPEC, train=True, augment=_plain(distractor_prob=1.0))
    torch.testing.assert_close(one[0]["image"],
                               TopDownDataset(samples[:1], COCO_SPEC, train=True, augment=_plain())[0]["image"])
    # MPII-style people (a centre and scale, no box) are pasted too, from their centre and scale
    s = samples[1]
    mpii = PersonSample(s.image_path, 2, center=np.array([60.0, 105.0]), scale=np.array([112.0, 237.0]),
                        keypoints=s.keypoints, visible=s.visible)
    both = TopDownDataset([samples[0], mpii], COCO_SPEC, train=True, augment=_plain(distractor_prob=1.0))
    alone = TopDownDataset([samples[0], mpii], COCO_SPEC, train=True, augment=_plain())
    assert not torch.equal(both[0]["image"], alone[0]["image"])
    assert not torch.equal(both[1]["image"], alone[1]["image"])
    # evaluation never pastes
    ev = TopDownDataset(samples, COCO_SPEC, train=False, augment=AugmentConfig(distractor_prob=1.0),
                        with_targets=True)
    torch.testing.assert_close(ev[0]["image"], TopDownDataset(samples, COCO_SPEC, train=False)[0]["image"])


def test_cli_and_training_record_it(tmp_path):
    from click.testing import CliRunner
    from safetensors import safe_open

    from starpose.cli import main
    from starpose.train.loop import train

    cfg = _mix_cfg(tmp_path, epochs=1)
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--distractor-prob", "0.5", "--no-aug",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 2 and "--no-aug" in r.output
    r = CliRunner().invoke(main, ["train", "--mix", cfg.mix, "--distractor-prob", "-0.1",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 2 and "-0.1" in r.output
    assert not (tmp_path / "w").exists()
    with pytest.raises(ValueError, match="distractor_prob"):
        train(cfg.override(distractor_prob=1.5), tmp_path / "bad", progress=False, log=lambda s: None)
    logs = []
    train(cfg.override(distractor_prob=0.3), tmp_path / "a", progress=False, log=logs.append)
    assert any("neighbours" in line and "30%" in line for line in logs), logs
    with safe_open(str(tmp_path / "a" / "final.safetensors"), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["lineage"])[-1]["distractor_prob"] == 0.3


def test_crowded_report_splits_people_with_neighbours_from_people_alone(tmp_path):
    from conftest import load_recipe

    mod = load_recipe("default_weights/crowded.py")
    kp = np.zeros((17, 3))
    kp[5:] = np.stack([np.linspace(40, 60, 12), np.linspace(20, 90, 12), np.full(12, 2)], axis=1)
    # two people side by side (the second's arm within the first's crop), a third far to the right
    people = [([30, 10, 40, 90], kp), ([55, 10, 40, 90], kp + [25, 0, 0]), ([250, 10, 40, 90], kp + [220, 0, 0])]
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 3600.0, "iscrowd": 0,
             "num_keypoints": 12, "keypoints": k.reshape(-1).tolist()} for i, (b, k) in enumerate(people)]
    anns.append({"id": 9, "image_id": 1, "category_id": 1, "bbox": [240, 0, 60, 100], "area": 6000.0, "iscrowd": 1,
                 "num_keypoints": 0, "keypoints": [0] * 51})  # a crowd region over the third: not a neighbour
    assert [mod.neighbours(a, anns) for a in anns[:3]] == [1, 1, 0]
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(json.dumps({"images": [{"id": 1, "file_name": "1.jpg", "width": 400, "height": 200}],
                                    "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    off = people[1][1] + [0, 40, 0]  # the second person's keypoints 40 px off: OKS near 0
    res = [{"image_id": 1, "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": 1.0}
           for k in (people[0][1], off, people[2][1])]
    res_file = tmp_path / "res.json"
    res_file.write_text(json.dumps(res))
    report = mod.crowded_report(ann_file, res_file)
    assert report["alone"]["people"] == 1 and report["alone"]["mean_oks"] == pytest.approx(1.0)
    assert report["with neighbours"]["people"] == 2
    # one exact; the other's best is the first person's result, 25 px away: well under 0.5
    assert 0.5 <= report["with neighbours"]["mean_oks"] < 0.6
    assert report["with neighbours"]["oks_above_0.5"] == 0.5
    assert mod.main([str(ann_file), str(res_file), "--json", str(tmp_path / "t.json")]) == 0
    assert json.loads((tmp_path / "t.json").read_text()) == report
    with pytest.raises(SystemExit, match="annotation file not found"):
        mod.main([str(tmp_path / "none.json"), str(res_file)])
