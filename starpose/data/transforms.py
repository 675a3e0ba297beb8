"""Top-down training augmentations (MMPose's RandomFlip, RandomHalfBody, RandomBBoxTransform),
applied to (image, center, scale, keypoints) before the affine crop."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..processing import fix_aspect_ratio

__all__ = ["AugmentConfig", "truncnorm", "random_flip", "half_body", "random_bbox_transform", "lower_body_mask"]

_LOWER = ("hip", "knee", "ankle", "pelvis")


@dataclass(frozen=True)
class AugmentConfig:
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_keypoints: int = 9  # more than this many visible keypoints
    half_body_padding: float = 1.5
    shift_factor: float = 0.16
    shift_prob: float = 0.3
    scale_factor: tuple[float, float] = (0.5, 1.5)
    scale_prob: float = 1.0
    rotate_factor: float = 80.0
    rotate_prob: float = 0.6
    # Photometric and occlusion (on the uint8 crop, after the geometric warp). Off in the
    # release's recipe; ``with_photometric()`` turns on RTMPose's stage-1 choice: HSV gains, a
    # little blur, one coarse dropout hole.
    hsv_prob: float = 0.0
    hsv_gains: tuple[float, float, float] = (5.0, 30.0, 30.0)  # hue (OpenCV 0..180), saturation, value
    blur_prob: float = 0.0
    dropout_prob: float = 0.0
    dropout_size: tuple[float, float] = (0.2, 0.4)  # hole side as a fraction of the crop side
    # Start from the person detector's box (a sample's ``extra["det_box"]``, from a mix source's
    # "boxes" file) instead of the labelled one this often: the boxes the model gets at run time.
    det_box_prob: float = 0.0

    @classmethod
    def with_photometric(cls) -> "AugmentConfig":
        return cls(hsv_prob=1.0, blur_prob=0.1, dropout_prob=0.5)

    @classmethod
    def none(cls) -> "AugmentConfig":
        return cls(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0,
                   hsv_prob=0.0, blur_prob=0.0, dropout_prob=0.0, det_box_prob=0.0)


def truncnorm(rng: np.random.Generator, size: int | tuple[int, ...] = ()) -> np.ndarray:
    """Standard normal truncated to [-1, 1] (rejection sampling)."""
    out = rng.standard_normal(size)
    bad = np.abs(out) > 1
    while np.any(bad):
        out = np.where(bad, rng.standard_normal(np.shape(out)), out)
        bad = np.abs(out) > 1
    return out


def lower_body_mask(names: tuple[str, ...]) -> np.ndarray:
    return np.array([any(p in n for p in _LOWER) for n in names], dtype=bool)


def random_flip(
    rng: np.random.Generator, image: np.ndarray, center: np.ndarray, keypoints: np.ndarray | None,
    visible: np.ndarray | None, flip_index: list[int], prob: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    if prob <= 0 or rng.random() >= prob:
        return image, center, keypoints, visible, False
    w = image.shape[1]
    image = np.ascontiguousarray(image[:, ::-1])
    center = np.array([w - 1 - center[0], center[1]])
    if keypoints is not None:
        keypoints = keypoints[flip_index].copy()
        keypoints[:, 0] = w - 1 - keypoints[:, 0]
        visible = visible[flip_index].copy()
    return image, center, keypoints, visible, True


def half_body(
    rng: np.random.Generator, center: np.ndarray, scale: np.ndarray, keypoints: np.ndarray,
    visible: np.ndarray, lower: np.ndarray, aspect_ratio: float, cfg: AugmentConfig,
) -> tuple[np.ndarray, np.ndarray]:
    vis = visible > 0
    if cfg.half_body_prob <= 0 or vis.sum() <= cfg.half_body_min_keypoints or rng.random() >= cfg.half_body_prob:
        return center, scale
    upper_ids = np.flatnonzero(vis & ~lower)
    lower_ids = np.flatnonzero(vis & lower)
    if rng.random() < 0.5 and len(upper_ids) > 2:
        ids = upper_ids
    else:
        ids = lower_ids if len(lower_ids) > 2 else upper_ids
    if len(ids) < 2:
        return center, scale
    pts = keypoints[ids]
    lo, hi = pts.min(0), pts.max(0)
    new_center = (lo + hi) / 2
    new_scale = fix_aspect_ratio(hi - lo, aspect_ratio) * cfg.half_body_padding
    return new_center, new_scale


def random_bbox_transform(
    rng: np.random.Generator, center: np.ndarray, scale: np.ndarray, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray, float]:
    center = center.copy()
    scale = scale.copy()
    rot = 0.0
    if cfg.shift_prob > 0 and rng.random() < cfg.shift_prob:
        center = center + truncnorm(rng, 2) * cfg.shift_factor * scale
    if cfg.scale_prob > 0 and rng.random() < cfg.scale_prob:
        lo, hi = cfg.scale_factor
        scale = scale * (float(truncnorm(rng)) * (hi - lo) / 2 + (hi + lo) / 2)
    if cfg.rotate_prob > 0 and rng.random() < cfg.rotate_prob:
        rot = float(truncnorm(rng)) * cfg.rotate_factor
    return center, scale, rot


def photometric(rng: np.random.Generator, crop: np.ndarray, cfg: AugmentConfig) -> np.ndarray:
    """HSV jitter, occasional Gaussian blur and one coarse-dropout hole filled with a random
    colour, on a uint8 RGB crop. Keypoint targets are unchanged (an occluded keypoint is still
    where it is, as in RTMPose's CoarseDropout)."""
    import cv2

    out = crop
    if cfg.hsv_prob > 0 and rng.random() < cfg.hsv_prob:
        dh, ds, dv = (rng.uniform(-1, 1, 3) * np.asarray(cfg.hsv_gains)).tolist()
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + int(round(dh))) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] + int(round(ds)), 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + int(round(dv)), 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if cfg.blur_prob > 0 and rng.random() < cfg.blur_prob:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if cfg.dropout_prob > 0 and rng.random() < cfg.dropout_prob:
        h, w = out.shape[:2]
        lo, hi = cfg.dropout_size
        hh, ww = int(h * rng.uniform(lo, hi)), int(w * rng.uniform(lo, hi))
        y, x = int(rng.integers(0, h - hh + 1)), int(rng.integers(0, w - ww + 1))
        out = out.copy() if out is crop else out
        out[y:y + hh, x:x + ww] = rng.integers(0, 256, 3, dtype=np.uint8)
    return out
