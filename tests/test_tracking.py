"""starpose.tracking: the One Euro filter, MoveNet-style ROI tracking and skeleton draw lists."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from starpose.processing import bbox_xywh_to_cs
from starpose.spec import COCO_SPEC, CROWDPOSE_SPEC, MPII_SPEC
from starpose.tracking import (
    OneEuroFilter,
    RoiTracker,
    full_frame_box,
    keypoint_side,
    roi_from_keypoints,
    skeleton_draw_list,
    torso_indices,
)

from conftest import COCO_JSON, shared



def _scalar_one_euro(xs, ts, min_cutoff, beta, d_cutoff):
    """The paper's algorithm for one scalar, written out independently."""
    def alpha(cutoff, dt):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    out, x_prev, dx_prev, t_prev = [], None, 0.0, None
    for x, t in zip(xs, ts):
        if x_prev is None:
            x_prev, t_prev = x, t
            out.append(x)
            continue
        dt = t - t_prev
        dx = (x - x_prev) / dt
        dx_hat = alpha(d_cutoff, dt) * dx + (1 - alpha(d_cutoff, dt)) * dx_prev
        a = alpha(min_cutoff + beta * abs(dx_hat), dt)
        x_hat = a * x + (1 - a) * x_prev
        out.append(x_hat)
        x_prev, dx_prev, t_prev = x_hat, dx_hat, t
    return out


def test_one_euro_matches_the_paper_per_element() -> None:
    rng = np.random.default_rng(0)
    ts = np.cumsum(rng.uniform(0.02, 0.05, 40))
    xs = np.cumsum(rng.normal(0, 3, (40, 3, 2)), axis=0)
    f = OneEuroFilter(min_cutoff=0.7, beta=0.2, d_cutoff=1.3)
    got = np.array([f(x, t) for x, t in zip(xs, ts)])
    for k in range(3):
        for c in range(2):
            ref = _scalar_one_euro(xs[:, k, c], ts, 0.7, 0.2, 1.3)
            np.testing.assert_allclose(got[:, k, c], ref, rtol=1e-12, atol=1e-9)


def test_one_euro_smooths_jitter_and_follows_motion() -> None:
    rng = np.random.default_rng(1)
    ts = np.arange(1, 121) / 30.0
    still = 100 + rng.normal(0, 2.0, 120)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    out = np.array([f(np.array([x]), t)[0] for x, t in zip(still, ts)])
    assert np.std(out[30:]) < 0.5 * np.std(still[30:])
    # A fast ramp: with beta the lag shrinks compared with beta = 0.
    ramp = 300.0 * ts
    lag = {}
    for beta in (0.0, 0.05):
        f = OneEuroFilter(min_cutoff=1.0, beta=beta)
        out = np.array([f(np.array([x]), t)[0] for x, t in zip(ramp, ts)])
        lag[beta] = float(np.mean(ramp[60:] - out[60:]))
    assert lag[0.05] < 0.3 * lag[0.0]


def test_one_euro_invalid_elements_pass_through_and_restart() -> None:
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    f(np.array([[0.0, 0.0], [10.0, 10.0]]), 0.0)
    out = f(np.array([[1.0, 1.0], [500.0, 500.0]]), 0.033, valid=np.array([[True], [False]]))
    assert out[1].tolist() == [500.0, 500.0]  # not filtered
    assert 0 < out[0, 0] < 1.0
    out = f(np.array([[2.0, 2.0], [20.0, 20.0]]), 0.066)
    assert out[1].tolist() == [20.0, 20.0]  # restarted: first sample returned as is
    assert out[0, 0] < 2.0


def test_one_euro_rejects_bad_use() -> None:
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)
    f = OneEuroFilter()
    f(np.zeros((17, 2)), 1.0)
    with pytest.raises(ValueError, match="timestamps must increase"):
        f(np.zeros((17, 2)), 1.0)
    with pytest.raises(ValueError, match="reset"):
        f(np.zeros((14, 2)), 2.0)
    f.reset()
    assert f(np.ones((14, 2)), 2.0).tolist() == np.ones((14, 2)).tolist()


def test_torso_indices_for_every_layout() -> None:
    assert torso_indices(COCO_SPEC.keypoint_names) == (5, 6, 11, 12)
    assert torso_indices(CROWDPOSE_SPEC.keypoint_names) == (0, 1, 6, 7)
    assert torso_indices(MPII_SPEC.keypoint_names) == (13, 12, 3, 2)
    with pytest.raises(ValueError, match="left_hip"):
        torso_indices(["nose", "left_shoulder", "right_shoulder", "right_hip"])


def _coco_people():
    data = json.loads(shared(COCO_JSON).read_text())
    sizes = {i["id"]: (i["width"], i["height"]) for i in data["images"]}
    for a in data["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        yield kp[:, :2], np.where(kp[:, 2] > 0, 0.9, 0.0), np.asarray(a["bbox"]), sizes[a["image_id"]]


def test_roi_from_ground_truth_keypoints_covers_the_person() -> None:
    """On the COCO fixture, the ROI crop holds the whole GT box and is not much larger."""
    torso = torso_indices(COCO_SPEC.keypoint_names)
    size = tuple(COCO_SPEC.input_size)
    checked = 0
    for kp, sc, gt, image_size in _coco_people():
        roi = roi_from_keypoints(kp, sc, image_size, torso)
        has_torso = (sc[[5, 6]] > 0.3).any() and (sc[[11, 12]] > 0.3).any()
        assert (roi is None) == (not has_torso)
        if roi is None:
            continue
        c, s = bbox_xywh_to_cs(roi, size, COCO_SPEC.bbox_padding)
        lo, hi = c - s / 2, c + s / 2
        assert (lo <= gt[:2] + 1e-6).all() and (hi >= gt[:2] + gt[2:] - 1e-6).all()
        _, s_gt = bbox_xywh_to_cs(gt, size, COCO_SPEC.bbox_padding)
        assert 0.95 <= s[1] / s_gt[1] <= 1.6
        checked += 1
    assert checked >= 10


def test_roi_rules() -> None:
    torso = (0, 1, 2, 3)
    kp = np.array([[90.0, 100.0], [110.0, 100.0], [95.0, 160.0], [105.0, 160.0], [100.0, 230.0]])
    sc = np.array([0.9, 0.9, 0.9, 0.9, 0.9])
    box = roi_from_keypoints(kp, sc, (640, 480), torso, torso_factor=1.5, body_factor=1.2)
    # centred on the hips; x half-extent = 1.5 x 10 (torso) vs 1.2 x 10 (body): 15;
    # y half-extent = 1.5 x 60 (torso) vs 1.2 x 70 (body): 90
    np.testing.assert_allclose(box, [100 - 15.0, 160 - 90.0, 30.0, 180.0])
    sc_lost = sc.copy()
    sc_lost[[2, 3]] = 0.3  # at the threshold is not visible
    assert roi_from_keypoints(kp, sc_lost, (640, 480), torso) is None
    huge = (kp - [100.0, 160.0]) * 25 + [320.0, 240.0]  # hips at the image centre
    np.testing.assert_allclose(roi_from_keypoints(huge, sc, (640, 480), torso), full_frame_box((640, 480)))
    tracker = RoiTracker((640, 480), torso)
    assert tracker.lost and tracker.box.tolist() == [0, 0, 640, 480]
    np.testing.assert_allclose(tracker.update(kp, sc), box)
    assert not tracker.lost
    tracker.update(kp, sc_lost)
    assert tracker.lost and tracker.box.tolist() == [0, 0, 640, 480]


def test_skeleton_draw_list() -> None:
    assert [keypoint_side(n) for n in ("left_hip", "right_eye", "nose", "neck")] == [
        "left", "right", "center", "center"]
    scores = np.full(17, 0.9)
    scores[[0, 9]] = 0.1  # nose and left wrist hidden
    points, lines = skeleton_draw_list(scores, COCO_SPEC.skeleton, COCO_SPEC.keypoint_names, 0.3)
    assert [p[0] for p in points] == [i for i in range(17) if i not in (0, 9)]
    assert (5, 6, "center") in lines and (13, 11, "left") in lines and (14, 12, "right") in lines
    assert all(0 not in (a, b) and 9 not in (a, b) for a, b, _ in lines)
    assert len(lines) == len(COCO_SPEC.skeleton) - 3  # the nose has 2 bones, the left wrist 1
