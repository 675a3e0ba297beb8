"""Evaluate a model on a COCO-style (COCO, CrowdPose) validation set: predict, write results, score."""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.coco import CocoIndex, coco_det_samples, coco_gt_samples, require_labelled_people
from ..data.topdown import TopDownDataset
from ..inference import run_topdown, to_coco_results
from ..spec import PoseSpec
from .oks import coco_keypoint_eval, keypoint_similarity, write_results

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

    Returns ``{"metrics": {...}, "results": [...], "num_people": N}``, with ground-truth boxes also
    ``"per_keypoint"``: ``{name: {"similarity": mean OKS term, "labelled": people}}``
    (:func:`~starpose.evaluation.oks.keypoint_similarity`, each person's pose from their own box,
    before OKS-NMS); writes the COCO results JSON to ``results_out`` when given (atomically).
    """
    index = CocoIndex(ann_file, spec)
    require_labelled_people(index, "OKS AP has nothing to score")
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
    out = {"metrics": metrics, "results": results, "num_people": len(samples)}
    if not det_file and samples:
        out["per_keypoint"] = _per_keypoint(index, samples, preds, spec, use_area=mode == "coco")
    return out


def _per_keypoint(index: CocoIndex, samples: list, preds: list[dict], spec: PoseSpec, use_area: bool) -> dict:
    """Per keypoint name: the mean OKS term of the people who label it, and how many do. The
    scale is what the evaluation itself uses: COCO's ``area``, CrowdPose's box w x h x 0.53."""
    import numpy as np

    anns = {int(a.get("id", -1)): a for a in index.annotations}
    areas = []
    for s in samples:
        ann = anns.get(s.ann_id, {})
        w, h = float(s.bbox[2]), float(s.bbox[3])
        areas.append(float(ann["area"]) if use_area and "area" in ann else w * h * 0.53)
    mean, count = keypoint_similarity(np.stack([p["keypoints"][:, :2] for p in preds]),
                                      np.stack([s.keypoints for s in samples]),
                                      np.stack([s.visible for s in samples]), np.asarray(areas), spec.sigmas)
    return {name: {"similarity": None if np.isnan(m) else round(float(m), 4), "labelled": int(n)}
            for name, m, n in zip(spec.keypoint_names, mean, count)}
