"""benchmarks.box_gap: the box matching that splits the --boxes ours gap into recall, spread and
extra boxes (the end-to-end run needs ../shared/people and the pose weights: a benchmark step)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.box_gap import best_detection_per_person, box_iou, labelled_people, subset_annotations


def test_box_iou_matches_hand_computed_values():
    a = np.array([[0, 0, 10, 10], [100, 100, 5, 5]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 1, 1], [0, 0, 0, 0]])
    got = box_iou(a, b)
    assert got.shape == (2, 4)
    assert got[0, 0] == pytest.approx(1.0)
    assert got[0, 1] == pytest.approx(50 / 150)  # half overlap: 50 / (100 + 100 - 50)
    assert got[0, 2] == 0.0 and got[1].max() == 0.0
    assert got[0, 3] == 0.0  # an empty box overlaps nothing (no division by zero)


def test_each_person_gets_the_detection_that_overlaps_them_most():
    people = {1: [(11, [0, 0, 10, 20]), (12, [50, 0, 10, 20])], 2: [(21, [0, 0, 10, 10])]}
    dets = {1: [(0, [1, 0, 10, 20]), (1, [0, 0, 10, 20]), (2, [58, 0, 10, 20])], 3: [(3, [0, 0, 10, 10])]}
    got = best_detection_per_person(people, dets, min_iou=0.5)
    assert set(got) == {11}  # person 12 overlaps det 2 by 40/360: a miss; image 2 has no detections
    assert got[11][0] == 1 and got[11][1] == pytest.approx(1.0)
    loose = best_detection_per_person(people, dets, min_iou=0.05)
    assert loose[12][0] == 2


def test_labelled_people_skip_crowd_and_unlabelled_annotations(tmp_path):
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
           "annotations": [
               {"id": 1, "image_id": 1, "bbox": [0, 0, 10, 10], "num_keypoints": 3, "iscrowd": 0},
               {"id": 2, "image_id": 1, "bbox": [0, 0, 10, 10], "num_keypoints": 0, "iscrowd": 0},
               {"id": 3, "image_id": 1, "bbox": [0, 0, 10, 10], "num_keypoints": 5, "iscrowd": 1}],
           "categories": [{"id": 1, "name": "person"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    by_image, anns = labelled_people(path)
    assert list(anns) == [1] and by_image == {1: [(1, [0.0, 0.0, 10.0, 10.0])]}


def test_subset_keeps_only_the_chosen_photos_and_their_people(tmp_path):
    doc = {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 64} for i in (1, 2, 3)],
           "annotations": [{"id": 10 + i, "image_id": i, "bbox": [0, 0, 10, 10], "num_keypoints": 3, "iscrowd": 0}
                           for i in (1, 2, 3, 3)],
           "categories": [{"id": 1, "name": "person"}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    out = subset_annotations(path, {3, 7}, tmp_path / "sub.json")
    sub = json.loads(out.read_text())
    assert [im["id"] for im in sub["images"]] == [3]
    assert [a["image_id"] for a in sub["annotations"]] == [3, 3] and sub["categories"] == doc["categories"]
    with pytest.raises(SystemExit, match="ann.json: none of its photos"):
        subset_annotations(path, {99}, tmp_path / "none.json")


def _photos_json(tmp_path, n_photos=10, seed=0):
    """A COCO keypoints json of ``n_photos`` photos, two labelled people each, and exact predictions."""
    rng = np.random.default_rng(seed)
    images, anns, exact = [], [], []
    for i in range(1, n_photos + 1):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        for _ in range(2):
            x, y, w, h = rng.uniform(10, 300), rng.uniform(10, 150), rng.uniform(80, 200), rng.uniform(150, 300)
            kp = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17), np.full(17, 2.0)], 1)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "bbox": [x, y, w, h], "area": w * h,
                         "iscrowd": 0, "num_keypoints": 17, "keypoints": kp.reshape(-1).tolist()})
            exact.append({"image_id": i, "category_id": 1, "score": float(rng.uniform(0.5, 1)),
                          "keypoints": np.concatenate([kp[:, :2] + rng.normal(0, 1.0, (17, 2)), np.ones((17, 1))],
                                                      1).reshape(-1).tolist()})
    path = tmp_path / "people.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}]}))
    return path, exact


def test_ratio_interval_of_the_same_results_is_one_and_of_worse_ones_below(tmp_path):
    from starpose import COCO_SPEC
    from benchmarks.box_gap import ratio_interval

    path, exact = _photos_json(tmp_path)
    same = ratio_interval(path, exact, exact, COCO_SPEC.sigmas, resamples=30)
    assert same["interval_90"] == [1.0, 1.0] and same["share_at_least_0.9x"] == 1.0
    rng = np.random.default_rng(1)
    # "ours": half the photos lose one person (a miss), the rest as exact
    drop = {i for i in range(1, 11) if rng.random() < 0.5} or {1}
    kept, seen = [], set()
    for r in exact:
        if r["image_id"] in drop and r["image_id"] not in seen:
            seen.add(r["image_id"])
            continue
        kept.append(r)
    worse = ratio_interval(path, exact, kept, COCO_SPEC.sigmas, resamples=200)
    lo, hi = worse["interval_90"]
    assert 0.3 < lo <= hi < 1.0 and worse["share_at_least_0.9x"] < 0.5
    assert ratio_interval(path, exact, [], COCO_SPEC.sigmas, resamples=5) is None
