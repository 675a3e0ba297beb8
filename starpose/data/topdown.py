"""Top-down person samples → affine crops, SimCC targets and the metadata to map predictions back.

A data set is a list of :class:`PersonSample` (one person box or centre/scale in one image), built
by the COCO / CrowdPose / MPII readers; :class:`TopDownDataset` turns them into training or test
tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..processing import bbox_xywh_to_cs, fix_aspect_ratio, get_warp_matrix, invert_affine, apply_affine
from ..spec import PoseSpec
from .errors import DataError
from .targets import simcc_targets
from .transforms import (AugmentConfig, flip_box, frame_truncation, half_body, lower_body_mask, paste_distractor,
                         photometric, random_bbox_transform, random_flip)

__all__ = ["PersonSample", "TopDownDataset", "read_image_rgb", "collate"]


@dataclass
class PersonSample:
    image_path: Path
    image_id: int
    bbox: np.ndarray | None = None  # x, y, w, h (pixels)
    center: np.ndarray | None = None  # when given instead of a box (MPII)
    scale: np.ndarray | None = None  # box size in pixels (w, h), already padded
    keypoints: np.ndarray | None = None  # (K, 2) pixels
    visible: np.ndarray | None = None  # (K,) 0/1/2 as in COCO
    bbox_score: float = 1.0
    ann_id: int = -1
    extra: dict = field(default_factory=dict)


def read_image_rgb(path: Path) -> np.ndarray:
    """Read an image file as uint8 RGB HWC; a missing or unreadable file raises DataError."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "image file not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise DataError(path, "cannot decode image (corrupt or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class TopDownDataset(Dataset):
    """Affine-cropped person samples. In ``train`` mode applies flip, (optionally) frame truncation,
    half-body and bbox scale/shift/rotation jitter; returns normalized NCHW crops, SimCC targets and metadata."""

    def __init__(
        self,
        samples: list[PersonSample],
        spec: PoseSpec,
        train: bool = False,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        with_targets: bool | None = None,
    ) -> None:
        self.samples = samples
        self.spec = spec
        self.train = train
        self.augment = augment if augment is not None else (AugmentConfig() if train else AugmentConfig.none())
        self.seed = seed
        self.epoch = 0
        self.with_targets = train if with_targets is None else with_targets
        self._lower = lower_body_mask(spec.keypoint_names)
        self._mean = np.asarray(spec.mean, dtype=np.float32)
        self._std = np.asarray(spec.std, dtype=np.float32)

    def set_epoch(self, epoch: int) -> None:
        """Make augmentation depend on (seed, epoch, index): deterministic and worker-independent."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def center_scale(self, s: PersonSample) -> tuple[np.ndarray, np.ndarray]:
        aspect = self.spec.input_w / self.spec.input_h
        if s.center is not None and s.scale is not None:
            return np.asarray(s.center, dtype=np.float64), fix_aspect_ratio(np.asarray(s.scale, np.float64), aspect)
        if s.bbox is None:
            raise DataError(s.image_path, f"sample {s.ann_id} has neither a box nor a centre/scale")
        return bbox_xywh_to_cs(s.bbox, self.spec.input_size, self.spec.bbox_padding)

    def __getitem__(self, index: int) -> dict:
        """``index`` may exceed the length (a person drawn twice in one epoch, see
        :class:`~starpose.data.mix.MixSampler`): the person is ``index % len``, the augmentation
        depends on the full index."""
        import cv2

        key = int(index)
        index = key % len(self.samples)
        s = self.samples[index]
        image = read_image_rgb(s.image_path)
        center, scale = self.center_scale(s)
        # the (x, y, w, h) box the crop starts from, when there is one (MPII gives a centre/scale)
        box = None if s.center is not None and s.scale is not None else s.bbox
        if self.train and self.augment.det_box_prob > 0 and s.extra and s.extra.get("det_box") is not None:
            # its own stream: the other draws stay what they were without detector boxes
            if np.random.default_rng((self.seed, self.epoch, key, 1)).random() < self.augment.det_box_prob:
                box = s.extra["det_box"]
                center, scale = bbox_xywh_to_cs(box, self.spec.input_size, self.spec.bbox_padding)
        kpts = None if s.keypoints is None else np.asarray(s.keypoints, dtype=np.float64).copy()
        vis = None if s.visible is None else np.asarray(s.visible, dtype=np.float64).copy()
        kw = s.extra.get("keypoint_weight") if s.extra else None
        rot = 0.0
        flipped = False
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, key))
            width = image.shape[1]
            image, center, kpts, vis, flipped = random_flip(
                rng, image, center, kpts, vis, self.spec.flip_index, self.augment.flip_prob
            )
            if self.augment.truncate_prob > 0 and kpts is not None and box is not None:
                # its own stream too, so the draws below stay what they were without it
                trng = np.random.default_rng((self.seed, self.epoch, key, 2))
                fbox = flip_box(box, width) if flipped else np.asarray(box, np.float64)
                image, fbox, kpts, vis, cut = frame_truncation(trng, image, fbox, kpts, vis, self.augment)
                if cut:
                    center, scale = bbox_xywh_to_cs(fbox, self.spec.input_size, self.spec.bbox_padding)
            if kpts is not None:
                center, scale = half_body(
                    rng, center, scale, kpts, vis, self._lower, self.spec.input_w / self.spec.input_h, self.augment
                )
            center, scale, rot = random_bbox_transform(rng, center, scale, self.augment)
        w, h = self.spec.input_size
        mat = get_warp_matrix(center, scale, rot, (w, h))
        crop = cv2.warpAffine(image, mat.astype(np.float32), (w, h), flags=cv2.INTER_LINEAR)
        kpts_c = None if kpts is None else apply_affine(kpts, mat)
        if self.train and self.augment.distractor_prob > 0 and len(self.samples) > 1:
            # its own stream: the other draws stay what they were without it
            drng = np.random.default_rng((self.seed, self.epoch, key, 3))
            if drng.random() < self.augment.distractor_prob:
                crop = self._paste_neighbour(drng, crop, kpts_c, vis, scale, box, index)
        if self.train:
            crop = photometric(rng, crop, self.augment)
        x = (crop.astype(np.float32) - self._mean) / self._std
        out = {
            "image": torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))),
            "crop_to_image": torch.from_numpy(invert_affine(mat)),
            "center": torch.from_numpy(center.astype(np.float64)),
            "scale": torch.from_numpy(np.asarray(scale, dtype=np.float64)),
            "image_id": int(s.image_id),
            "ann_id": int(s.ann_id),
            "bbox_score": float(s.bbox_score),
            "index": index,
        }
        if self.with_targets:
            k = self.spec.num_keypoints
            if kpts_c is None:
                kpts_c, vis = np.zeros((k, 2)), np.zeros(k)
            tx, ty, wt = simcc_targets(kpts_c, vis, (w, h), self.spec.simcc_split_ratio, self.spec.simcc_sigma)
            if kw is not None:
                wt = (wt * np.asarray(kw, dtype=np.float32)).astype(np.float32)
            out.update(
                target_x=torch.from_numpy(tx),
                target_y=torch.from_numpy(ty),
                target_weight=torch.from_numpy(wt),
                keypoints_crop=torch.from_numpy(kpts_c.astype(np.float32)),
                swap_tolerant=bool(s.extra.get("swap_tolerant", False)) if s.extra else False,
            )
        return out

    def _paste_neighbour(self, rng: np.random.Generator, crop: np.ndarray, kpts_c: np.ndarray | None,
                         vis: np.ndarray | None, scale: np.ndarray, box: np.ndarray | None,
                         index: int) -> np.ndarray:
        """Another person of the data set, drawn by ``rng``, pasted beside this one (:func:`paste_distractor`)."""
        h = self.spec.input_h
        j = int(rng.integers(len(self.samples) - 1))
        j += j >= index
        o = self.samples[j]
        if o.bbox is not None:
            obox = np.asarray(o.bbox, np.float64)
        elif o.center is not None and o.scale is not None:
            c, sz = np.asarray(o.center, np.float64), np.asarray(o.scale, np.float64) / self.spec.bbox_padding
            obox = np.array([c[0] - sz[0] / 2, c[1] - sz[1] / 2, sz[0], sz[1]])
        else:
            return crop
        # the person's height in crop pixels: their box's, else the crop's without its padding
        per_px = h / float(np.asarray(scale)[1])
        target_h = min(float(box[3]) * per_px, 3.0 * h) if box is not None else h / self.spec.bbox_padding
        return paste_distractor(rng, crop, kpts_c, vis, target_h, read_image_rgb(o.image_path), obox, o.keypoints,
                                o.visible, self.spec.keypoint_names, self.spec.skeleton, self.augment)


def collate(batch: list[dict]) -> dict:
    out: dict = {}
    for key in batch[0]:
        vals = [b[key] for b in batch]
        out[key] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else torch.tensor(vals)
    return out
