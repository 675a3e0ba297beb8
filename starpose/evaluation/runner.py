"""Evaluate a model on a COCO-style (COCO, CrowdPose) validation set: predict, write results, score."""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.coco import CocoIndex, coco_det_samples, coco_gt_samples
from ..data.topdown import TopDownDataset
from ..inference import run_topdown, to_coco_results
from ..spec import PoseSpec
from .oks import coco_keypoint_eval, write_results

__all__ = ["evaluate_coco_style"]


def evaluate_coco_style(
    model: torch.nn.Module,
    spec: PoseSpec,
    ann_file: str | Path,
    image_root: str | Path,
    det_file: str | Path | None = None,
    *,
    mode: str = "coco",
    flip: bool = True,
    batch_size: int = 32,
    num_workers: int = 0,
    det_score_thr: float = 0.0,
    nms_thr: float | None = 0.9,
    results_out: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """OKS AP of ``model`` with GT boxes (``det_file=None``) or detection boxes.

    Returns ``{"metrics": {...}, "results": [...], "num_people": N}``; writes the COCO results JSON
    to ``results_out`` when given (atomically).
    """
    index = CocoIndex(ann_file, spec)
    if det_file:
        samples = coco_det_samples(det_file, index, image_root, score_thr=det_score_thr)
    else:
        samples = coco_gt_samples(index, image_root)
    ds = TopDownDataset(samples, spec, train=False)
    preds = run_topdown(model, ds, spec, batch_size=batch_size, flip=flip, num_workers=num_workers,
                        progress=progress, desc="evaluate")
    results = to_coco_results(preds, spec, nms_thr=nms_thr)
    if results_out is not None:
        write_results(results, results_out)
    metrics = coco_keypoint_eval(ann_file, results, spec.sigmas, mode=mode)
    return {"metrics": metrics, "results": results, "num_people": len(samples)}
