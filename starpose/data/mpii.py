"""MPII (MMPose json layout): ``[{image, center, scale, joints, joints_vis}, …]``.

MPII's centre/scale protocol as in MMPose: the box is ``scale * 200`` pixels square around
``center``, the centre is moved 15 px (at scale 1) down to keep the feet, and MPII's 1-based
(MATLAB) coordinates become 0-based; the 1.25 padding is applied by the top-down crop.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .coco import load_json
from .errors import DataError
from .topdown import PersonSample

__all__ = ["mpii_samples", "SCALE_PIXEL_STD"]

SCALE_PIXEL_STD = 200.0
NUM_JOINTS = 16


def mpii_samples(ann_file: str | Path, image_root: str | Path, *, check_images: bool = True,
                 padding: float = 1.25) -> list[PersonSample]:
    ann_file = Path(ann_file)
    anns = load_json(ann_file)
    if not isinstance(anns, list):
        raise DataError(ann_file, "expected a list of MPII entries {image, center, scale, joints, joints_vis}")
    samples = []
    for i, ann in enumerate(anns):
        for key in ("image", "center", "scale"):
            if key not in ann:
                raise DataError(ann_file, f"entry {i}: missing '{key}'")
        center = np.asarray(ann["center"], dtype=np.float64).copy()
        s = float(ann["scale"])
        if s <= 0 or center.shape != (2,):
            raise DataError(ann_file, f"entry {i}: bad center {ann['center']!r} / scale {ann['scale']!r}")
        scale = np.array([s, s]) * SCALE_PIXEL_STD
        if center[0] != -1:
            center[1] += 15.0 / SCALE_PIXEL_STD * scale[1]
        center -= 1.0
        kpts = vis = None
        if "joints" in ann:
            joints = np.asarray(ann["joints"], dtype=np.float64)
            if joints.shape != (NUM_JOINTS, 2):
                raise DataError(ann_file, f"entry {i}: joints has shape {joints.shape}, expected ({NUM_JOINTS}, 2)")
            kpts = joints - 1.0
            vis = np.asarray(ann.get("joints_vis", [1] * NUM_JOINTS), dtype=np.float64)
            if vis.shape != (NUM_JOINTS,):
                raise DataError(ann_file, f"entry {i}: joints_vis has {vis.size} values, expected {NUM_JOINTS}")
        path = Path(image_root) / ann["image"]
        if check_images and not path.is_file():
            raise DataError(path, f"image of entry {i} (listed in {ann_file}) not found")
        samples.append(PersonSample(image_path=path, image_id=i, center=center, scale=scale * padding,
                                    keypoints=kpts, visible=vis, ann_id=i, extra={"image": ann["image"]}))
    return samples
