"""Top-down training augmentations (MMPose's RandomFlip, RandomHalfBody, RandomBBoxTransform),
applied to (image, center, scale, keypoints) before the affine crop."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..processing import fix_aspect_ratio

__all__ = ["AugmentConfig", "truncnorm", "random_flip", "half_body", "random_bbox_transform", "lower_body_mask",
           "frame_truncation", "flip_box", "person_mask", "paste_distractor"]

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
    # Let the photo's frame cut through the person this often (:func:`frame_truncation`): COCO's
    # people at a photo's edge, whose keypoints beyond it are unlabelled and whose box ends there.
    truncate_prob: float = 0.0
    truncate_range: tuple[float, float] = (0.35, 0.9)  # where the cut falls, as a fraction of the box side
    truncate_second_side_prob: float = 0.3  # a corner: a second, adjacent edge cuts too
    truncate_min_keypoints: int = 3  # labelled keypoints that must stay inside the frame
    # Put a second person from another photo into the crop this often (:func:`paste_distractor`):
    # COCO's people stand among others whose limbs reach into their box. The pasted person is not
    # labelled: the model learns to answer for the centred person only.
    distractor_prob: float = 0.0
    distractor_offset: tuple[float, float] = (0.3, 0.6)  # its centre's sideways offset, fraction of the crop width
    distractor_scale: tuple[float, float] = (0.75, 1.25)  # its height relative to the person's
    distractor_behind_prob: float = 0.5  # it stands behind the person (the person's own body stays on top)

    @classmethod
    def with_photometric(cls) -> "AugmentConfig":
        return cls(hsv_prob=1.0, blur_prob=0.1, dropout_prob=0.5)

    @classmethod
    def none(cls) -> "AugmentConfig":
        return cls(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0,
                   hsv_prob=0.0, blur_prob=0.0, dropout_prob=0.0, det_box_prob=0.0, truncate_prob=0.0,
                   distractor_prob=0.0)


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


def flip_box(box: np.ndarray, image_width: int) -> np.ndarray:
    """An (x, y, w, h) box mirrored as :func:`random_flip` mirrors the image (x -> width - 1 - x)."""
    x, y, w, h = np.asarray(box, np.float64)
    return np.array([image_width - 1 - x - w, y, w, h])


_SIDES = ("top", "bottom", "left", "right")
_ADJACENT = {"top": ("left", "right"), "bottom": ("left", "right"), "left": ("top", "bottom"),
             "right": ("top", "bottom")}


def frame_truncation(
    rng: np.random.Generator, image: np.ndarray, box: np.ndarray, keypoints: np.ndarray, visible: np.ndarray,
    cfg: AugmentConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Move the photo's edge into the person, as a photo that cut them off would have it.

    With probability ``cfg.truncate_prob`` one edge (top, bottom, left or right, equally likely;
    with ``truncate_second_side_prob`` also an adjacent one: a corner) is moved to a line through the
    person's box, at a fraction drawn from ``truncate_range`` of the box side from the kept side.
    The image becomes a view of the part that stays; keypoints beyond the line lose their label
    (``visible`` 0: no loss, as COCO leaves keypoints outside a photo unlabelled, never "absent");
    the box is clipped at the line, as COCO's boxes end at the frame. Keypoints and box move with the
    image's origin. Unchanged when fewer than ``truncate_min_keypoints`` labelled keypoints would stay.

    Returns ``(image, box, keypoints, visible, sides cut)``.
    """
    if cfg.truncate_prob <= 0 or rng.random() >= cfg.truncate_prob:
        return image, box, keypoints, visible, ()
    first = _SIDES[int(rng.integers(4))]
    sides = [first]
    if rng.random() < cfg.truncate_second_side_prob:
        sides.append(_ADJACENT[first][int(rng.integers(2))])
    fracs = rng.uniform(*cfg.truncate_range, size=len(sides))
    height, width = image.shape[:2]
    x0, y0, bw, bh = np.asarray(box, np.float64)
    # the kept region, in the image's coordinates: [left, right) x [top, bottom)
    left, top, right, bottom = 0, 0, width, height
    cut = []
    for side, f in zip(sides, fracs):
        if side == "bottom" and (edge := int(round(y0 + f * bh))) < bottom:
            bottom = edge
        elif side == "top" and (edge := int(round(y0 + (1 - f) * bh))) > top:
            top = edge
        elif side == "right" and (edge := int(round(x0 + f * bw))) < right:
            right = edge
        elif side == "left" and (edge := int(round(x0 + (1 - f) * bw))) > left:
            left = edge
        else:
            continue  # the photo already ends before that line
        cut.append(side)
    if not cut or right - left < 2 or bottom - top < 2:
        return image, box, keypoints, visible, ()
    kx, ky = keypoints[:, 0], keypoints[:, 1]
    inside = (kx >= left) & (kx < right) & (ky >= top) & (ky < bottom)
    kept = (visible > 0) & inside
    if kept.sum() < cfg.truncate_min_keypoints:
        return image, box, keypoints, visible, ()
    cx0, cy0 = max(x0, left), max(y0, top)
    cx1, cy1 = min(x0 + bw, right), min(y0 + bh, bottom)
    if cx1 - cx0 < 1 or cy1 - cy0 < 1:
        return image, box, keypoints, visible, ()
    offset = np.array([left, top], np.float64)
    new_box = np.array([cx0 - left, cy0 - top, cx1 - cx0, cy1 - cy0])
    new_visible = np.where(inside, visible, 0).astype(np.asarray(visible).dtype)
    return image[top:bottom, left:right], new_box, keypoints - offset, new_visible, tuple(cut)


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


def person_mask(
    shape: tuple[int, int], keypoints: np.ndarray, visible: np.ndarray, names: tuple[str, ...],
    skeleton: tuple[tuple[int, int], ...], height: float, box: np.ndarray | None = None,
) -> np.ndarray:
    """A soft silhouette (float32 in [0, 1], ``shape`` = (H, W)) of a person from their labelled
    keypoints: a capsule along each skeleton edge, the torso's polygon and a head disc, about
    ``height`` pixels tall, edges feathered. With fewer than 4 labelled keypoints, an ellipse in
    ``box`` (x, y, w, h) when one is given, else nothing."""
    import cv2

    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    pts = np.asarray(keypoints, np.float64)
    lab = (np.asarray(visible) > 0) & np.all(np.isfinite(pts), axis=1)
    height = max(float(height), 1.0)
    thick = max(3, int(round(0.09 * height)))
    if lab.sum() >= 4:
        ip = np.round(pts).astype(np.int64)
        for a, b in skeleton:
            if lab[a] and lab[b]:
                cv2.line(mask, (int(ip[a, 0]), int(ip[a, 1])), (int(ip[b, 0]), int(ip[b, 1])), 255, thick, cv2.LINE_AA)
        torso = [i for i, n in enumerate(names) if ("shoulder" in n or "hip" in n) and lab[i]]
        if len(torso) >= 3:
            hull = cv2.convexHull(ip[torso].astype(np.int32))
            cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_AA)
        face = [i for i, n in enumerate(names) if any(k in n for k in ("nose", "eye", "ear", "head")) and lab[i]]
        sh = [i for i, n in enumerate(names) if "shoulder" in n and lab[i]]
        hp = [i for i, n in enumerate(names) if "hip" in n and lab[i]]
        head = None
        if face:
            head = pts[face].mean(0)
        elif sh and hp:  # no face labelled (LSPET): above the shoulders, along the body's axis
            s_mid, h_mid = pts[sh].mean(0), pts[hp].mean(0)
            head = s_mid + 0.35 * (s_mid - h_mid)
        if head is not None:
            cv2.circle(mask, (int(round(head[0])), int(round(head[1]))), max(2, int(round(0.07 * height))), 255, -1,
                       cv2.LINE_AA)
    elif box is not None:
        x, y, bw, bh = np.asarray(box, np.float64)
        cv2.ellipse(mask, (int(round(x + bw / 2)), int(round(y + bh / 2))),
                    (max(1, int(round(0.45 * bw))), max(1, int(round(0.48 * bh)))), 0, 0, 360, 255, -1, cv2.LINE_AA)
    k = 2 * max(1, thick // 3) + 1
    return cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32) / 255.0


def paste_distractor(
    rng: np.random.Generator, crop: np.ndarray, keypoints: np.ndarray | None, visible: np.ndarray | None,
    target_height: float, other: np.ndarray, other_box: np.ndarray, other_keypoints: np.ndarray | None,
    other_visible: np.ndarray | None, names: tuple[str, ...], skeleton: tuple[tuple[int, int], ...],
    cfg: AugmentConfig,
) -> np.ndarray:
    """Put a person from another photo (``other``, uint8 RGB; their box x, y, w, h and keypoints in
    that photo's pixels) beside the person of ``crop`` (uint8 RGB, keypoints in crop pixels), as a
    neighbour in a crowd: their height ``distractor_scale`` x ``target_height``, their centre
    ``distractor_offset`` x the crop width to the left or right, mirrored half of the time. Only the
    pasted person's silhouette (:func:`person_mask`) is copied; with ``distractor_behind_prob`` they
    stand behind the person, whose own silhouette stays on top. Labels are unchanged: the person's
    keypoints under the neighbour stay where they are (COCO labels occluded keypoints), and the
    neighbour's are not taught. Returns the new crop (``crop`` itself is not modified)."""
    import cv2

    h, w = crop.shape[:2]
    ox, oy, ow, oh = np.asarray(other_box, np.float64)
    if ow < 2 or oh < 2:
        return crop
    k = rng.uniform(*cfg.distractor_scale) * max(float(target_height), 1.0) / oh
    side = 1.0 if rng.random() < 0.5 else -1.0
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    place = np.array([w / 2 + side * rng.uniform(*cfg.distractor_offset) * w, h / 2 + rng.uniform(-0.15, 0.15) * h])
    a = np.diag([mirror * k, k])
    b = place - a @ np.array([ox + ow / 2, oy + oh / 2])
    mat = np.concatenate([a, b[:, None]], axis=1)
    warped = cv2.warpAffine(other, mat.astype(np.float32), (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT)
    if other_keypoints is not None and other_visible is not None:
        okp = np.asarray(other_keypoints, np.float64) @ a.T + b
        ovis = np.asarray(other_visible)
    else:
        okp, ovis = np.zeros((len(names), 2)), np.zeros(len(names))
    corners = np.array([[ox, oy], [ox + ow, oy + oh]]) @ a.T + b
    pbox = np.array([corners[:, 0].min(), corners[:, 1].min(), abs(corners[1, 0] - corners[0, 0]),
                     abs(corners[1, 1] - corners[0, 1])])
    m = person_mask((h, w), okp, ovis, names, skeleton, k * oh, pbox)
    if rng.random() < cfg.distractor_behind_prob and keypoints is not None and visible is not None:
        m = m * (1.0 - person_mask((h, w), keypoints, visible, names, skeleton, target_height))
    m = m[..., None]
    out = crop.astype(np.float32) * (1.0 - m) + warped.astype(np.float32) * m
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
