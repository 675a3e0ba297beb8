"""Top-down inference with the eager model: batches of crops → image-space keypoints → COCO results."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader

from .processing import apply_affine, decode_simcc
from .spec import PoseSpec

__all__ = ["predict_simcc", "run_topdown", "to_coco_results"]


@torch.no_grad()
def predict_simcc(
    model: torch.nn.Module, images: torch.Tensor, flip: bool = False, flip_index: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCC outputs for normalized crops; with ``flip`` averages with the flipped crop's outputs
    (flipped back: left/right swapped, x vectors reversed)."""
    sx, sy = model(images)
    if flip:
        sx, sy = _flip_average(model, images, sx, sy, flip_index)
    return sx, sy


def _flip_average(model, images, sx, sy, flip_index):
    """The flip test's average of one pass's outputs (``sx``, ``sy``) with the flipped crop's."""
    if flip_index is None:
        raise ValueError("flip test needs the spec's flip_index")
    fx, fy = model(images.flip(-1))
    fx = fx[:, flip_index].flip(-1)
    fy = fy[:, flip_index]
    return (sx + fx) * 0.5, (sy + fy) * 0.5


@torch.no_grad()
def run_topdown(
    model: torch.nn.Module,
    dataset,
    spec: PoseSpec,
    batch_size: int = 32,
    flip: bool = True,
    num_workers: int = 0,
    progress: bool = False,
    desc: str = "inference",
    with_plain: bool = False,
) -> list[dict]:
    """Predict every sample of a :class:`TopDownDataset`. Returns one dict per sample with
    ``keypoints`` (K, 3: x, y in image pixels, score), ``image_id``, ``bbox_score``, ``area``.

    ``with_plain`` (with ``flip``) also keeps the one-pass prediction, as ``keypoints_no_flip``: the
    flip test's unflipped pass is that prediction, so both come for the price of the flip test."""
    if with_plain and not flip:
        raise ValueError("with_plain keeps the flip test's unflipped pass: it needs flip=True")
    from .data.topdown import collate

    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate)
    it: Iterable = loader
    if progress:
        from tqdm import tqdm

        it = tqdm(loader, desc=desc, unit="batch", leave=False)
    preds: list[dict] = []
    device = next(model.parameters()).device
    for batch in it:
        images = batch["image"].to(device)
        px, py = model(images)
        sx, sy = _flip_average(model, images, px, py, spec.flip_index) if flip else (px, py)
        mats = batch["crop_to_image"].numpy()
        image_kpts = _to_image(sx, sy, mats, spec)
        plain_kpts = _to_image(px, py, mats, spec) if with_plain else None
        for i in range(len(image_kpts)):
            scale = batch["scale"][i].numpy()
            preds.append(
                {
                    "keypoints": image_kpts[i],
                    "image_id": int(batch["image_id"][i]),
                    "bbox_score": float(batch["bbox_score"][i]),
                    "area": float(np.prod(scale) / (spec.bbox_padding**2)),
                    "ann_id": int(batch["ann_id"][i]),
                    **({"keypoints_no_flip": plain_kpts[i]} if with_plain else {}),
                }
            )
    model.train(was_training)
    return preds


def _to_image(sx: torch.Tensor, sy: torch.Tensor, mats: np.ndarray, spec: PoseSpec) -> list[np.ndarray]:
    """Decoded SimCC outputs mapped from the crops to the images: (K, 3) per person, x, y, score."""
    kpts, scores = decode_simcc(sx.float().cpu().numpy(), sy.float().cpu().numpy(), spec.simcc_split_ratio)
    return [np.concatenate([apply_affine(kpts[i], mats[i]), scores[i][:, None]], axis=1) for i in range(len(kpts))]


def to_coco_results(
    preds: list[dict], spec: PoseSpec, kpt_score_thr: float = 0.2, nms_thr: float | None = 0.9,
    category_id: int = 1,
) -> list[dict]:
    """COCO keypoint results with MMPose's rescoring (box score x mean confident keypoint score)
    and per-image OKS-NMS (skip with ``nms_thr=None``)."""
    from .evaluation.oks import oks_nms

    by_image: dict[int, list[dict]] = {}
    for p in preds:
        k = p["keypoints"]
        conf = k[:, 2] > kpt_score_thr
        mean = float(k[conf, 2].mean()) if conf.any() else 0.0
        by_image.setdefault(p["image_id"], []).append({**p, "score": p["bbox_score"] * mean})
    out = []
    for image_id, poses in sorted(by_image.items()):
        keep = oks_nms(poses, nms_thr, spec.sigmas) if nms_thr is not None else range(len(poses))
        for i in keep:
            p = poses[i]
            out.append(
                {
                    "image_id": image_id,
                    "category_id": category_id,
                    "keypoints": [float(v) for v in np.asarray(p["keypoints"]).reshape(-1)],
                    "score": float(p["score"]),
                }
            )
    return out
