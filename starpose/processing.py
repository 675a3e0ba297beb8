"""Reference pre- and post-processing in plain numpy: the executable spec of every port.

These small functions follow MMPose's top-down pipeline (``bbox_xywh2cs``, ``get_warp_matrix``,
SimCC ``get_simcc_maximum``) but are written in closed form so that the Kotlin and Swift ports
can copy them line by line; the golden fixture in ``tests/golden`` is generated from them.

Conventions: a box is ``(x, y, w, h)`` in image pixels; ``center`` and ``scale`` are the box
centre and the (padded, aspect-fixed) box size in pixels; ``input_size`` is ``(w, h)``; an affine
matrix is 2x3 and maps ``[x, y, 1]`` column vectors.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "bbox_xywh_to_cs",
    "bbox_xyxy_to_cs",
    "fix_aspect_ratio",
    "get_warp_matrix",
    "invert_affine",
    "apply_affine",
    "top_down_affine",
    "normalize_image",
    "decode_simcc",
    "keypoints_to_image",
    "flip_simcc",
    "flip_keypoints",
]


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Grow the shorter side of ``scale`` (…, 2) so that ``w / h == aspect_ratio``."""
    scale = np.asarray(scale, dtype=np.float64)
    w, h = scale[..., 0], scale[..., 1]
    wide = w > h * aspect_ratio
    out_w = np.where(wide, w, h * aspect_ratio)
    out_h = np.where(wide, w / aspect_ratio, h)
    return np.stack([out_w, out_h], axis=-1)


def bbox_xywh_to_cs(
    bbox: np.ndarray, input_size: tuple[int, int] | None = None, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Box ``(x, y, w, h)`` → ``(center, scale)``; ``scale`` is padded and, when ``input_size``
    is given, widened to the model's aspect ratio (as MMPose's TopdownAffine does)."""
    bbox = np.asarray(bbox, dtype=np.float64)
    x, y, w, h = bbox[..., 0], bbox[..., 1], bbox[..., 2], bbox[..., 3]
    center = np.stack([x + w * 0.5, y + h * 0.5], axis=-1)
    scale = np.stack([w, h], axis=-1) * padding
    if input_size is not None:
        scale = fix_aspect_ratio(scale, input_size[0] / input_size[1])
    return center, scale


def bbox_xyxy_to_cs(
    bbox: np.ndarray, input_size: tuple[int, int] | None = None, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Box ``(x1, y1, x2, y2)`` → ``(center, scale)``."""
    bbox = np.asarray(bbox, dtype=np.float64)
    xywh = np.concatenate([bbox[..., :2], bbox[..., 2:4] - bbox[..., :2]], axis=-1)
    return bbox_xywh_to_cs(xywh, input_size, padding)


def get_warp_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rot: float,
    output_size: tuple[int, int],
    inv: bool = False,
) -> np.ndarray:
    """2x3 affine that maps the box (``center``, ``scale``; rotated by ``rot`` degrees) onto an
    ``output_size`` = (w, h) crop; with ``inv`` the crop → image map. Equals MMPose's
    ``get_warp_matrix`` with ``fix_aspect_ratio=True`` and no shift: scale by ``out_w / scale_w``,
    rotate by ``-rot``, centre on the crop's centre.
    """
    cx, cy = float(center[0]), float(center[1])
    s = float(output_size[0]) / float(scale[0])
    theta = np.deg2rad(rot)
    c, sn = np.cos(theta), np.sin(theta)
    a = np.array([[c, sn], [-sn, c]], dtype=np.float64) * s
    t = np.array([output_size[0] * 0.5, output_size[1] * 0.5]) - a @ np.array([cx, cy])
    mat = np.concatenate([a, t[:, None]], axis=1)
    return invert_affine(mat) if inv else mat


def invert_affine(mat: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    mat = np.asarray(mat, dtype=np.float64)
    a = mat[:, :2]
    a_inv = np.linalg.inv(a)
    return np.concatenate([a_inv, (-a_inv @ mat[:, 2])[:, None]], axis=1)


def apply_affine(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points (…, 2)."""
    points = np.asarray(points, dtype=np.float64)
    mat = np.asarray(mat, dtype=np.float64)
    return points @ mat[:, :2].T + mat[:, 2]


def top_down_affine(
    image: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    input_size: tuple[int, int],
    rot: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop the person region into an ``input_size`` (w, h) image with bilinear sampling.

    Returns the crop and the 2x3 image → crop matrix (its inverse maps keypoints back).
    """
    import cv2

    mat = get_warp_matrix(center, scale, rot, input_size)
    crop = cv2.warpAffine(
        image, mat.astype(np.float32), (int(input_size[0]), int(input_size[1])), flags=cv2.INTER_LINEAR
    )
    return crop, mat


def normalize_image(
    rgb: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]
) -> np.ndarray:
    """uint8 HWC RGB → float32 CHW, ``(x - mean) / std`` per channel."""
    x = np.asarray(rgb, dtype=np.float32)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def decode_simcc(
    simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """SimCC vectors (…, K, Lx), (…, K, Ly) → keypoints (…, K, 2) in crop pixels and scores (…, K).

    Location = argmax / split_ratio; score = the smaller of the two maxima; a keypoint whose
    score is <= 0 is invalid and gets location -1 (MMPose's ``get_simcc_maximum``).
    """
    simcc_x = np.asarray(simcc_x)
    simcc_y = np.asarray(simcc_y)
    x_loc = np.argmax(simcc_x, axis=-1).astype(np.float32)
    y_loc = np.argmax(simcc_y, axis=-1).astype(np.float32)
    max_x = np.max(simcc_x, axis=-1)
    max_y = np.max(simcc_y, axis=-1)
    scores = np.minimum(max_x, max_y).astype(np.float32)
    kpts = np.stack([x_loc, y_loc], axis=-1) / np.float32(split_ratio)
    kpts[scores <= 0] = -1.0
    return kpts, scores


def keypoints_to_image(keypoints: np.ndarray, crop_to_image: np.ndarray) -> np.ndarray:
    """Map crop-pixel keypoints (…, K, 2) back to image pixels with the crop → image matrix."""
    return apply_affine(keypoints, crop_to_image)


def flip_simcc(
    simcc_x: np.ndarray, simcc_y: np.ndarray, flip_index: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Undo a horizontal flip on SimCC outputs (…, K, L): swap left/right and reverse x."""
    simcc_x = np.asarray(simcc_x)[..., flip_index, :][..., ::-1]
    simcc_y = np.asarray(simcc_y)[..., flip_index, :]
    return np.ascontiguousarray(simcc_x), np.ascontiguousarray(simcc_y)


def flip_keypoints(
    keypoints: np.ndarray, visible: np.ndarray | None, width: float, flip_index: list[int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Horizontally flip keypoints (…, K, 2) in an image of ``width`` pixels."""
    kp = np.asarray(keypoints, dtype=np.float64)[..., flip_index, :].copy()
    kp[..., 0] = width - 1 - kp[..., 0]
    vis = None if visible is None else np.asarray(visible)[..., flip_index].copy()
    return kp, vis
