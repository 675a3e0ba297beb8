"""Distillation teacher and labels: BlazePose → COCO mapping, decoding geometry, label policy,
source manifest, and the real teacher on the COCO fixture (when its model files are cached)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from starpose.distill.blazepose import (
    FETCH_COMMAND,
    Detection,
    Roi,
    decode_detections,
    missing_teacher_files,
    points_to_roi,
    refine_from_heatmap,
    ssd_anchors,
    weighted_nms,
)
from starpose.distill.labels import LabelPolicy, annotation_from_reading, coco_dataset, oks, oks_nms
from starpose.distill.manifest import validate_manifest
from starpose.distill.mapping import (
    BLAZEPOSE_FLIP_PAIRS,
    BLAZEPOSE_LANDMARKS,
    BLAZEPOSE_TO_COCO,
    blazepose_to_coco,
    flip_blazepose,
)
from starpose.spec import COCO_SPEC

from conftest import COCO_DIR, COCO_JSON, load_recipe, shared

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "default_weights"


def _load(name: str):
    return load_recipe(f"default_weights/{name}.py")


# ---------------------------------------------------------------- landmark → COCO mapping


def test_mapping_selects_same_named_landmarks():
    assert len(BLAZEPOSE_LANDMARKS) == 33 and len(BLAZEPOSE_TO_COCO) == 17
    for coco_idx, bp_idx in enumerate(BLAZEPOSE_TO_COCO):
        assert BLAZEPOSE_LANDMARKS[bp_idx] == COCO_SPEC.keypoint_names[coco_idx]
    # Known MediaPipe indices: nose 0, left eye 2, right eye 5, left hip 23, right ankle 28.
    assert list(BLAZEPOSE_TO_COCO[[0, 1, 2, 11, 16]]) == [0, 2, 5, 23, 28]


def test_blazepose_to_coco_values_and_shape_check():
    lm = np.arange(33 * 2, dtype=float).reshape(33, 2)
    sc = np.linspace(0, 1, 33)
    kps, scores = blazepose_to_coco(lm[None], sc[None])
    assert kps.shape == (1, 17, 2) and scores.shape == (1, 17)
    np.testing.assert_array_equal(kps[0, 5], lm[11])  # left shoulder
    np.testing.assert_array_equal(scores[0, 16], sc[28])  # right ankle
    with pytest.raises(ValueError, match="33 BlazePose landmarks"):
        blazepose_to_coco(np.zeros((17, 2)), np.zeros(17))


def test_flip_pairs_are_left_right_and_consistent_with_coco():
    assert len(BLAZEPOSE_FLIP_PAIRS) == 16
    for a, b in BLAZEPOSE_FLIP_PAIRS:
        assert BLAZEPOSE_LANDMARKS[a].replace("left", "right") == BLAZEPOSE_LANDMARKS[b]
    assert (9, 10) in BLAZEPOSE_FLIP_PAIRS  # mouth_left / mouth_right
    names = np.array(BLAZEPOSE_LANDMARKS)
    flipped = flip_blazepose(names, axis=0)
    np.testing.assert_array_equal(flip_blazepose(flipped, axis=0), names)
    assert flipped[0] == "nose" and flipped[11] == "right_shoulder"
    # Flipping BlazePose then mapping equals mapping then COCO's own flip pairs.
    vals = np.arange(33.0)
    coco_after = blazepose_to_coco(np.zeros((33, 2)), flip_blazepose(vals, axis=0))[1]
    coco_before = blazepose_to_coco(np.zeros((33, 2)), vals)[1]
    for a, b in COCO_SPEC.flip_pairs:
        coco_before[[a, b]] = coco_before[[b, a]]
    np.testing.assert_array_equal(coco_after, coco_before)


# ---------------------------------------------------------------- geometry and decoding


def test_roi_crop_and_projection_agree():
    """A bright dot sampled into a rotated crop is projected back onto itself."""
    img = np.zeros((300, 400, 3), np.uint8)
    dot = np.array([250.0, 120.0])
    img[118:123, 248:253] = 255
    roi = Roi(220.0, 150.0, 160.0, np.deg2rad(35.0))
    crop = roi.crop(img, 256)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    assert len(xs) > 0
    centre_crop = np.array([xs.mean() + 0.5, ys.mean() + 0.5])  # continuous crop coordinates
    np.testing.assert_allclose(roi.to_image(centre_crop[None], 256)[0], dot, atol=0.6)
    # The crop centre is the ROI centre; a crop corner sits at half the diagonal.
    np.testing.assert_allclose(roi.to_image(np.array([[128.0, 128.0]]), 256)[0], [220.0, 150.0])
    corner = roi.to_image(np.array([[0.0, 0.0]]), 256)[0]
    assert np.isclose(np.linalg.norm(corner - [220.0, 150.0]), 160.0 / np.sqrt(2))


def test_points_to_roi_rotation_convention():
    up = points_to_roi(np.array([100.0, 200.0]), np.array([100.0, 150.0]))
    assert np.isclose(up.rotation, 0.0) and np.isclose(up.size, 2 * 50 * 1.25)
    assert (up.cx, up.cy) == (100.0, 200.0)
    right = points_to_roi(np.array([100.0, 200.0]), np.array([150.0, 200.0]))
    assert np.isclose(right.rotation, np.pi / 2)
    # The crop's "up" (towards smaller crop y) points to the end point in the image.
    top = right.to_image(np.array([[128.0, 0.0]]), 256)[0]
    assert top[0] > right.cx + 50 and np.isclose(top[1], 200.0)


def test_ssd_anchors_layout():
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    assert ((a > 0) & (a < 1)).all()
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1], a[0])  # two anchors per stride-8 cell
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])  # last 7x7 cell, 6 anchors
    assert len(np.unique(a[-294:], axis=0)) == 49


def test_decode_detections_and_weighted_nms():
    anchors = ssd_anchors()
    raw = np.zeros((len(anchors), 12))
    logits = np.full(len(anchors), -10.0)
    i = 1000
    raw[i, :4] = [11.2, -22.4, 44.8, 89.6]  # dx, dy, w, h in input pixels
    raw[i, 4:6] = [0.0, 22.4]
    logits[i] = 3.0
    boxes, kps, scores = decode_detections(raw, logits, anchors)
    assert len(boxes) == 1 and np.isclose(scores[0], 1 / (1 + np.exp(-3.0)))
    cx, cy = anchors[i] + [0.05, -0.1]
    np.testing.assert_allclose(boxes[0], [cx - 0.1, cy - 0.2, cx + 0.1, cy + 0.2])
    np.testing.assert_allclose(kps[0, 0], anchors[i] + [0.0, 0.1])
    b = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    k = np.stack([b[:, :2].repeat(2, 0).reshape(3, 2, 2)] * 2, axis=1).reshape(3, 4, 2)
    merged = weighted_nms(b, k, np.array([0.9, 0.6, 0.8]), 0.3)
    assert len(merged) == 2
    np.testing.assert_allclose(merged[0][0], (0.9 * b[0] + 0.6 * b[1]) / 1.5)
    assert merged[0][2] == 0.9


def test_refine_from_heatmap_moves_to_peak_only_when_confident():
    hm = np.full((64, 64, 2), -8.0, np.float32)
    hm[20, 30, 0] = 6.0  # landmark 0: confident peak at col 30, row 20
    hm[40, 10, 1] = -1.0  # landmark 1: weak peak (sigmoid < 0.5)
    xy = np.array([[31.5 / 64, 21.5 / 64], [10.0 / 64, 41.0 / 64]])
    out = refine_from_heatmap(xy, hm)
    assert abs(out[0, 0] * 64 - 30.0) < 0.05 and abs(out[0, 1] * 64 - 20.0) < 0.05
    np.testing.assert_array_equal(out[1], xy[1])
    assert abs(refine_from_heatmap(xy, hm, cell_offset=0.5)[0, 0] * 64 - 30.5) < 0.05


# ---------------------------------------------------------------- labels


def _reading(width=200.0, height=400.0, x0=100.0, y0=50.0, vis=0.95):
    rng = np.random.default_rng(0)
    lm = np.stack([x0 + rng.uniform(0, width, 33), y0 + rng.uniform(0, height, 33)], axis=1)
    return {
        "landmarks": lm.tolist(), "visibility": [vis] * 33, "presence": [0.99] * 33, "flag": 0.98,
        "roi": [200.0, 250.0, 500.0, 0.0], "det_score": 0.9, "flip_err": [0.01] * 33,
        "mask_box": [x0 - 5, y0 - 5, width + 10, height + 10], "mask_area": 0.5 * width * height,
    }


def test_annotation_from_reading_fields_and_visibility():
    r = _reading()
    r["visibility"][28] = 0.1  # right ankle not visible
    r["landmarks"][0] = [-20.0, 60.0]  # nose outside the image
    ann = annotation_from_reading(r, 640, 480, LabelPolicy())
    kps = np.array(ann["keypoints"]).reshape(17, 3)
    assert kps[0, 2] == 0 and kps[16, 2] == 0 and (kps[0, :2] == 0).all()
    assert ann["num_keypoints"] == 15 == int((kps[:, 2] == 2).sum())
    assert set(np.unique(kps[:, 2])) <= {0, 2}
    np.testing.assert_allclose(kps[5, :2], np.round(r["landmarks"][11], 2))
    assert ann["bbox"] == [95.0, 45.0, 210.0, 410.0] and ann["area"] == 0.5 * 200 * 400
    json.dumps(ann)  # JSON-serialisable


def test_annotation_policy_rejections():
    p = LabelPolicy()
    assert annotation_from_reading(_reading(vis=0.2), 640, 480, p) is None  # no confident keypoints
    shaky = _reading()
    shaky["flip_err"] = [0.2] * 33
    assert annotation_from_reading(shaky, 640, 480, p) is None
    tiny = _reading(width=10, height=20)
    assert annotation_from_reading(tiny, 640, 480, p) is None
    other = _reading()
    other["mask_box"] = [400.0, 300.0, 100.0, 100.0]  # segmented someone else
    assert annotation_from_reading(other, 640, 480, p) is None
    merged = _reading()
    merged["mask_box"] = [95.0, -300.0, 210.0, 760.0]  # mask spread over someone above
    ann = annotation_from_reading(merged, 640, 480, p)
    lm = np.asarray(merged["landmarks"])[BLAZEPOSE_TO_COCO]
    assert np.isclose(ann["bbox"][1], lm[:, 1].min() - 0.2 * np.ptp(lm, axis=0).max(), atol=0.01)
    assert ann["bbox"][0] == 95.0 and ann["area"] < merged["mask_area"]
    no_mask = _reading()
    del no_mask["mask_box"], no_mask["mask_area"]
    ann = annotation_from_reading(no_mask, 640, 480, p)
    assert ann is not None and ann["bbox"][2] > 150


def test_oks_and_nms():
    a = annotation_from_reading(_reading(), 640, 480, LabelPolicy())
    assert np.isclose(oks(a, a), 1.0)
    b = copy.deepcopy(a)
    b["keypoints"] = [v + 40.0 if i % 3 != 2 else v for i, v in enumerate(b["keypoints"])]
    b["score"] = a["score"] - 0.1
    assert oks(a, b) < 0.7
    c = copy.deepcopy(a)
    c["score"] = a["score"] - 0.2
    kept = oks_nms([c, a, b], 0.7)
    assert kept == [a, b]
    data = coco_dataset([{"id": 1, "file_name": "x.jpg", "width": 640, "height": 480}],
                        [dict(a, image_id=1), dict(b, image_id=1)], {})
    assert [x["id"] for x in data["annotations"]] == [1, 2]
    assert data["categories"][0]["keypoints"] == list(COCO_SPEC.keypoint_names)
    assert [1 + s for s in COCO_SPEC.skeleton[0]] == data["categories"][0]["skeleton"][0]


# ---------------------------------------------------------------- sources and manifest


def _manifest():
    return {
        "sources": {"p": {"package": "p", "version": "1", "kind": "sdist", "package_license": "MIT",
                          "archive": "p-1.tar.gz", "archive_sha256": "0" * 64}},
        "images": [
            {"id": 1, "file_name": "p/a.jpg", "width": 10, "height": 10, "package": "p", "version": "1",
             "member": "p-1/a.mp4", "frame": 3, "license": "MIT", "note": "", "group": "g1", "split": "train"},
            {"id": 2, "file_name": "p/b.jpg", "width": 10, "height": 10, "package": "p", "version": "1",
             "member": "p-1/b.jpg", "frame": None, "license": "MIT", "note": "", "group": "g2", "split": "val"},
        ],
    }


def test_manifest_validation():
    validate_manifest(_manifest())
    cases = [
        (lambda m: m["images"][0].pop("license"), "lacks 'license'"),
        (lambda m: m["images"][0].update(license="AGPL-3.0"), "licence"),
        (lambda m: m["images"][1].update(group="g1"), "both sides"),
        (lambda m: m["images"][1].update(id=1), "repeats"),
        (lambda m: m["images"][0].update(file_name="/abs/a.jpg"), "relative"),
        (lambda m: m["images"][0].update(package="q"), "not in sources"),
        (lambda m: m["images"][0].update(frame="3"), "frame"),
    ]
    for mutate, message in cases:
        m = _manifest()
        mutate(m)
        with pytest.raises(ValueError, match=message):
            validate_manifest(m, "test.json")


def test_source_table_is_consistent():
    src = _load("sources")
    for m in src.MEMBERS:
        assert m.package in src.PACKAGES, m
        assert m.split in ("train", "val") and m.license.strip()
        assert not any(w in m.license for w in ("GPL", "AGPL")), m
    for p in list(src.PACKAGES.values()) + list(src.TEACHER_PACKAGES.values()):
        assert p.kind in ("sdist", "wheel", "npm", "deb") and p.version
    assert {p.license for p in src.TEACHER_PACKAGES.values()} == {"Apache-2.0"}
    assert {m.split for m in src.MEMBERS} == {"train", "val"}
    gather = _load("gather")
    gather.check_groups(src.MEMBERS)
    bad = src.MEMBERS + (src.Member("pose2sim", "x", "MIT", "", "pose2sim", split="val"),)
    with pytest.raises(ValueError, match="pose2sim"):
        gather.check_groups(bad)


def test_video_sampling_and_near_duplicates(tmp_path):
    import cv2

    gather = _load("gather")
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(20):
        frame = np.full((48, 64, 3), 40, np.uint8)
        cv2.rectangle(frame, (2 * i, 10), (2 * i + 12, 40), (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    frames = list(gather.video_frames(path.read_bytes(), ".avi", 5))
    assert [i for i, _ in frames] == [0, 5, 10, 14, 19]
    assert len(list(gather.video_frames(path.read_bytes(), ".avi", 0))) == 20
    t0, t1 = gather._thumb(frames[0][1]), gather._thumb(frames[1][1])
    assert gather.changed_fraction(t0, t0) == 0.0
    assert gather.changed_fraction(t0, t1) > 0.05
    with pytest.raises(ValueError, match="cannot decode"):
        list(gather.video_frames(b"not a video", ".avi", 0))


# ---------------------------------------------------------------- the real teacher


def _teacher_or_skip(roles):
    missing = missing_teacher_files(roles)
    if missing:
        pytest.skip(f"teacher model files not cached ({missing[0]}); fetch them with `{FETCH_COMMAND}`")
    from starpose.distill.blazepose import BlazePoseTeacher

    return BlazePoseTeacher


@pytest.mark.parametrize("models,flip,passes,min_ap", [
    (("lite",), False, 1, 0.25),    # measured 0.343
    (("heavy",), True, 2, 0.58),    # measured 0.664 (the labelling configuration)
])
def test_teacher_oks_ap_on_coco_fixture(models, flip, passes, min_ap, measured):
    import pycocotools  # noqa: F401
    teacher_cls = _teacher_or_skip(("detector",) + models)
    from starpose.distill.calibrate import oks_ap, teacher_results

    teacher = teacher_cls(models=models, flip=flip, passes=passes, detector=False)
    ann = shared(COCO_JSON)
    results = teacher_results(teacher, ann, shared(COCO_DIR))
    gt = json.loads(ann.read_text())["annotations"]
    assert len(results) == sum(1 for a in gt if a["num_keypoints"] > 0 and not a["iscrowd"]) == 12
    ap = oks_ap(ann, results)
    measured(f"teacher {'+'.join(models)} flip={flip} passes={passes} OKS AP on the COCO fixture", ap["AP"])
    assert ap["AP"] >= min_ap, ap


@pytest.mark.slow
def test_teacher_reproduces_the_committed_validation_numbers(measured):
    """package.py decides release vs interim against results/teacher_val.json: the teacher run
    here on the COCO fixture and the held-out ``coco`` people gives those committed numbers."""
    _teacher_or_skip(("detector", "heavy"))
    people, fixture = shared("people"), shared(COCO_DIR)
    committed = json.loads((RECIPE / "results" / "teacher_val.json").read_text())["results"]
    doc = _load("teacher_people").teacher_val(people, None, fixture, only={"fixture", "coco"})
    for name in ("fixture", "coco"):
        got, want = doc["results"][name], committed[name]
        measured(f"teacher heavy (GT boxes) OKS AP on {name} ({int(got['people'])} people; committed {want['AP']:.4f})",
                 got["AP"])
        assert got["people"] == want["people"]
        assert abs(got["AP"] - want["AP"]) <= 0.005, (name, got["AP"], want["AP"])
        assert abs(got["AP50"] - want["AP50"]) <= 0.01, (name, got["AP50"], want["AP50"])


def test_teacher_detects_and_segments_fixture_person():
    teacher_cls = _teacher_or_skip(("detector", "full"))
    from starpose.distill.calibrate import _read_rgb
    from starpose.distill.labels import reading_from_pose

    teacher = teacher_cls(models=("full",), flip=True, passes=2)
    rgb = _read_rgb(shared(COCO_DIR) / "000000000785.jpg")
    gt = json.loads(shared(COCO_JSON).read_text())
    gt_ann = next(a for a in gt["annotations"] if a["image_id"] == 785)
    people = teacher.detect(rgb)
    assert len(people) == 1
    det, pose = people[0]
    assert isinstance(det, Detection) and det.score > 0.8

    def iou(a, b):
        x1, y1 = max(a[0], b[0]), max(a[1], b[1])
        x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
        inter = max(0, x2 - x1) * max(0, y2 - y1)
        return inter / (a[2] * a[3] + b[2] * b[3] - inter)

    assert iou(pose.extra["mask_box"], gt_ann["bbox"]) > 0.85
    ann = annotation_from_reading(reading_from_pose(pose, det), rgb.shape[1], rgb.shape[0], LabelPolicy())
    assert ann is not None and ann["num_keypoints"] >= 15
    ann["area"] = gt_ann["area"]
    assert oks(gt_ann, ann) > 0.75


def test_detector_windows_cover_the_image():
    from starpose.distill.blazepose import PoseDetector

    assert len(PoseDetector.windows(400, 400, ())) == 1
    assert len(PoseDetector.windows(400, 400, (1.0,))) == 1  # square: the letterbox suffices
    wins = PoseDetector.windows(576, 768, (1.0, 0.5))
    whole, rest = wins[0], wins[1:]
    assert (whole.cx, whole.cy, whole.size) == (383.5, 287.5, 768.0)
    half = [r for r in rest if r.size == 288.0]
    assert len(half) == 15  # 5 x 3 grid, 50% overlap
    # every pixel is inside some half-size window
    ys, xs = np.mgrid[0:576:16, 0:768:16]
    covered = np.zeros(xs.shape, bool)
    for r in half:
        covered |= (np.abs(xs - r.cx) <= r.size / 2) & (np.abs(ys - r.cy) <= r.size / 2)
    assert covered.all()


def test_label_predictions_resume_and_config(tmp_path):
    label = _load("label")
    im = {"file_name": "a.jpg", "detect_scales": [1.0, 0.5]}
    key = label.config_key(im)
    assert key != label.config_key({"file_name": "a.jpg"})
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"file_name": "a.jpg", "config": key, "people": [{"flag": 1}]}) + "\n"
                    + '{"file_name": "b.jpg", "conf')  # a line cut by an interrupted run
    preds = label.read_predictions(path)
    assert list(preds) == [("a.jpg", key)] and preds[("a.jpg", key)] == [{"flag": 1}]
