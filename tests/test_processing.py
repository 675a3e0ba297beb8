"""The numpy reference pre/post-processing agrees with MMPose's formulation and with itself."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from starpose import COCO_SPEC
from starpose.processing import (apply_affine, bbox_xywh_to_cs, bbox_xyxy_to_cs, decode_simcc, flip_keypoints,
                                 flip_simcc, get_warp_matrix, invert_affine, keypoints_to_image, top_down_affine)


def _mmpose_warp(center, scale, rot, out_size, inv=False):
    """MMPose's three-point construction of the same matrix (with cv2.getAffineTransform)."""
    def rotate(pt, a):
        s, c = np.sin(a), np.cos(a)
        return np.array([pt[0] * c - pt[1] * s, pt[0] * s + pt[1] * c])

    def third(a, b):
        d = a - b
        return b + np.array([-d[1], d[0]])

    src_w = scale[0]
    dst_w, dst_h = out_size
    r = np.deg2rad(rot)
    src_dir = rotate(np.array([src_w * -0.5, 0.0]), r)
    dst_dir = np.array([dst_w * -0.5, 0.0])
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0], src[1] = center, center + src_dir
    dst[0], dst[1] = [dst_w * 0.5, dst_h * 0.5], np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    src[2], dst[2] = third(src[0], src[1]), third(dst[0], dst[1])
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_warp_matrix_equals_mmpose(rot):
    center, scale = np.array([320.5, 211.0]), np.array([180.0, 240.0])
    ours = get_warp_matrix(center, scale, rot, (192, 256))
    np.testing.assert_allclose(ours, _mmpose_warp(center, scale, rot, (192, 256)), rtol=1e-4, atol=1e-3)
    inv = get_warp_matrix(center, scale, rot, (192, 256), inv=True)
    np.testing.assert_allclose(inv, _mmpose_warp(center, scale, rot, (192, 256), inv=True), rtol=1e-4, atol=1e-2)
    pts = np.array([[10.0, 20.0], [300.0, 400.0]])
    np.testing.assert_allclose(apply_affine(apply_affine(pts, ours), invert_affine(ours)), pts, atol=1e-9)


def test_box_to_center_scale_pads_and_fixes_aspect():
    c, s = bbox_xywh_to_cs(np.array([100.0, 50.0, 60.0, 200.0]), (192, 256))
    np.testing.assert_allclose(c, [130.0, 150.0])
    np.testing.assert_allclose(s, [250.0 * 0.75, 250.0])  # tall box: width grows to 3:4
    c2, s2 = bbox_xyxy_to_cs(np.array([100.0, 50.0, 160.0, 250.0]), (192, 256))
    np.testing.assert_allclose(c2, c)
    np.testing.assert_allclose(s2, s)
    _, wide = bbox_xywh_to_cs(np.array([0.0, 0.0, 400.0, 100.0]), (192, 256))
    np.testing.assert_allclose(wide, [500.0, 500.0 / 0.75])


def test_decode_simcc_argmax_min_score_and_invalid():
    k, lx, ly = 3, 384, 512
    sx = np.full((k, lx), -1.0, np.float32)
    sy = np.full((k, ly), -1.0, np.float32)
    sx[0, 101], sy[0, 250] = 0.9, 0.7
    sx[1, 10], sy[1, 20] = 0.4, 0.8
    sx[2, 5], sy[2, 6] = -0.2, 0.5  # max x <= 0 → invalid
    kpts, scores = decode_simcc(sx, sy, 2.0)
    np.testing.assert_allclose(kpts[0], [50.5, 125.0])
    np.testing.assert_allclose(scores, [0.7, 0.4, -0.2], rtol=1e-6)
    np.testing.assert_allclose(kpts[2], [-1.0, -1.0])


def test_flip_simcc_undoes_flipped_input_ordering():
    rng = np.random.default_rng(0)
    sx = rng.normal(size=(1, 17, 384)).astype(np.float32)
    sy = rng.normal(size=(1, 17, 512)).astype(np.float32)
    fx, fy = flip_simcc(sx, sy, COCO_SPEC.flip_index)
    bx, by = flip_simcc(fx, fy, COCO_SPEC.flip_index)
    np.testing.assert_array_equal(bx, sx)
    np.testing.assert_array_equal(by, sy)
    np.testing.assert_array_equal(fx[0, 1], sx[0, 2, ::-1])  # left eye ← right eye, reversed
    np.testing.assert_array_equal(fy[0, 1], sy[0, 2])  # y: swapped, not reversed


def test_flip_keypoints_swaps_pairs():
    kp = np.zeros((17, 2))
    kp[5] = [10, 50]
    out, vis = flip_keypoints(kp, np.arange(17), 100, COCO_SPEC.flip_index)
    np.testing.assert_allclose(out[6], [89, 50])
    assert vis[6] == 5 and vis[5] == 6


def test_crop_and_map_back_round_trip():
    img = np.zeros((300, 400, 3), np.uint8)
    cv2.circle(img, (250, 120), 3, (255, 255, 255), -1)
    center, scale = bbox_xywh_to_cs(np.array([150.0, 40.0, 180.0, 220.0]), (192, 256))
    crop, mat = top_down_affine(img, center, scale, (192, 256), rot=20.0)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    in_crop = np.array([[xs.mean(), ys.mean()]])
    back = keypoints_to_image(in_crop, invert_affine(mat))
    np.testing.assert_allclose(back[0], [250, 120], atol=1.0)
