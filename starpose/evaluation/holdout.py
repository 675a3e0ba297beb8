"""Validation on the held-out people of a training mix: per source, the metric its labels allow.

* COCO-17 sources (COCO json): OKS AP with the ground-truth boxes (pycocotools), against a json of
  just the held-out photos (every annotation of those photos, as COCO's own evaluation sees them);
* LSP sources: PCK@0.2 by torso size over the 12 limb joints.

The same scoring takes keypoints from anywhere (the student, the BlazePose teacher), so that the
numbers put side by side are computed the same way. ``score`` is the mean of the sources' primary
metrics (AP, PCK@0.2 / 100): the number that picks the best checkpoint.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.mix import Mix, Source, load_holdout, source_samples
from ..data.topdown import PersonSample, TopDownDataset
from ..spec import PoseSpec

__all__ = ["ValSet", "validation_sets", "coco_results", "bootstrap_inputs", "score_keypoints", "evaluate_sets",
           "selection_score"]


@dataclass
class ValSet:
    name: str
    metric: str  # "oks" | "pck"
    samples: list[PersonSample]
    gt: dict | None = None  # COCO json of the held-out photos (oks)
    source: Source | None = None
    info: dict = field(default_factory=dict)


def _coco_subset(src: Source, ids: set[int], spec: PoseSpec) -> dict:
    from ..data.coco import CocoIndex

    index = CocoIndex(src.path, spec)
    images = [im for i, im in index.images.items() if i in ids]
    anns = [a for a in index.annotations if int(a["image_id"]) in ids]
    for a in anns:
        a.setdefault("iscrowd", 0)
        a.setdefault("num_keypoints", int((np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2] > 0).sum()))
        if not a.get("area"):
            a["area"] = float(a["bbox"][2] * a["bbox"][3])
    cats = index.data.get("categories") or [{"id": 1, "name": "person", "keypoints": list(spec.keypoint_names),
                                             "skeleton": [[a + 1, b + 1] for a, b in spec.skeleton]}]
    return {"images": images, "annotations": anns, "categories": cats}


def validation_sets(mix: Mix, spec: PoseSpec, *, human_only: bool = True) -> list[ValSet]:
    """One :class:`ValSet` per source that has held-out photos (human-labelled sources only,
    unless ``human_only`` is False)."""
    if not mix.holdout:
        return []
    holdout = load_holdout(mix.holdout)
    out = []
    for src in mix.sources:
        if not src.key() or not holdout.get(src.key()):
            continue
        if human_only and src.labels != "human":
            continue
        samples = source_samples(src, spec, holdout=holdout, split="val")
        if not samples:
            continue
        if src.format == "lsp":
            out.append(ValSet(src.name, "pck", samples, source=src))
        else:
            out.append(ValSet(src.name, "oks", samples, gt=_coco_subset(src, holdout[src.key()], spec), source=src))
    return out


def coco_gt_set(name: str, ann_file: str | Path, image_root: str | Path, spec: PoseSpec) -> ValSet:
    """A whole COCO json as a validation set (e.g. the 12-person fixture)."""
    from ..data.coco import CocoIndex, coco_gt_samples

    index = CocoIndex(ann_file, spec)
    gt = {"images": list(index.images.values()), "annotations": index.annotations,
          "categories": index.data.get("categories") or []}
    return ValSet(name, "oks", coco_gt_samples(index, image_root), gt=gt)


def coco_results(vs: ValSet, keypoints: list[np.ndarray], spec: PoseSpec,
                 areas: list[float] | None = None) -> list[dict]:
    """COCO keypoint results of an ``oks`` set's predictions (one (K, 3) array per sample, image
    pixels), as :func:`score_keypoints` scores them (box score 1, OKS-NMS at 0.9 per photo)."""
    from ..inference import to_coco_results

    if len(keypoints) != len(vs.samples):
        raise ValueError(f"{vs.name}: {len(keypoints)} predictions for {len(vs.samples)} people")
    preds = []
    for i, (s, k) in enumerate(zip(vs.samples, keypoints)):
        area = areas[i] if areas is not None else float(s.bbox[2] * s.bbox[3])
        preds.append({"keypoints": np.asarray(k, np.float64), "image_id": s.image_id, "bbox_score": 1.0,
                      "area": area, "ann_id": s.ann_id})
    return to_coco_results(preds, spec, nms_thr=0.9)


def score_keypoints(vs: ValSet, keypoints: list[np.ndarray], spec: PoseSpec,
                    areas: list[float] | None = None) -> dict[str, float]:
    """Metrics of predicted keypoints (one (K, 3) array per sample of ``vs``, image pixels)."""
    if len(keypoints) != len(vs.samples):
        raise ValueError(f"{vs.name}: {len(keypoints)} predictions for {len(vs.samples)} people")
    if vs.metric == "pck":
        from ..data.lsp import pck

        pred = np.stack([k[:, :2] for k in keypoints])
        gt = np.stack([s.keypoints for s in vs.samples])
        vis = np.stack([s.visible for s in vs.samples])
        return pck(pred, gt, vis, 0.2)
    from .oks import coco_keypoint_eval

    results = coco_results(vs, keypoints, spec, areas)
    with tempfile.TemporaryDirectory() as tmp:
        gt_path = Path(tmp) / f"{vs.name}.json"
        gt_path.write_text(json.dumps(vs.gt))
        m = coco_keypoint_eval(gt_path, results, spec.sigmas)
    m["people"] = float(len(vs.samples))
    return m


def primary(vs_metric: str, metrics: dict[str, float]) -> float:
    return metrics["AP"] if vs_metric == "oks" else metrics["PCK@0.2"] / 100.0


def selection_score(results: dict[str, dict], sets: list[ValSet]) -> float:
    vals = [primary(vs.metric, results[vs.name]) for vs in sets if vs.name in results]
    return float(np.mean(vals)) if vals else float("nan")


Predictions = dict[str, tuple[list[np.ndarray], list[float]]]


@torch.no_grad()
def predict_sets(model: torch.nn.Module, sets: list[ValSet], spec: PoseSpec, *, flip: bool = True,
                 batch_size: int = 32, progress: bool = False, with_plain: bool = False):
    """``{set name: (keypoints per person, area per person)}``; with ``with_plain`` (and ``flip``) a pair
    of such dicts, the flip test's and the one-pass predictions, from the same forward passes."""
    from ..inference import run_topdown

    out: Predictions = {}
    plain: Predictions = {}
    for vs in sets:
        preds = run_topdown(model, TopDownDataset(vs.samples, spec), spec, batch_size=batch_size, flip=flip,
                            progress=progress, desc=f"validate {vs.name}", with_plain=with_plain)
        areas = [p["area"] for p in preds]
        out[vs.name] = ([p["keypoints"] for p in preds], areas)
        if with_plain:
            plain[vs.name] = ([p["keypoints_no_flip"] for p in preds], areas)
    return (out, plain) if with_plain else out


def score_sets(sets: list[ValSet], preds: Predictions, spec: PoseSpec) -> dict[str, dict[str, float]]:
    """``{set name: metrics}`` of :func:`predict_sets` output."""
    return {vs.name: score_keypoints(vs, preds[vs.name][0], spec, preds[vs.name][1]) for vs in sets}


def evaluate_sets(model: torch.nn.Module, sets: list[ValSet], spec: PoseSpec, *, flip: bool = True,
                  batch_size: int = 32, progress: bool = False, with_plain: bool = False):
    """``{set name: metrics}`` for the model (flip test by default); with ``with_plain`` a pair, the flip
    test's metrics and the one-pass metrics (see :func:`predict_sets`)."""
    preds = predict_sets(model, sets, spec, flip=flip, batch_size=batch_size, progress=progress,
                         with_plain=with_plain)
    if with_plain:
        return score_sets(sets, preds[0], spec), score_sets(sets, preds[1], spec)
    return score_sets(sets, preds, spec)


def bootstrap_inputs(sets: list[ValSet], preds_a: dict, preds_b: dict, spec: PoseSpec) -> list[dict]:
    """:func:`starpose.evaluation.bootstrap.compare`'s input from validation sets and two models'
    predictions (:func:`predict_sets` output: per set, keypoints and areas). Only the held-out sets of the
    mix count in the score, as in training's selection score; a whole-json set (:func:`coco_gt_set`, the
    fixture) is compared but left out of it."""
    out = []
    for vs in sets:
        entry = {"name": vs.name, "metric": vs.metric, "photos": [int(s.image_id) for s in vs.samples],
                 "in_score": vs.source is not None}
        if vs.metric == "oks":
            entry.update(gt=vs.gt, sigmas=spec.sigmas,
                         results_a=coco_results(vs, preds_a[vs.name][0], spec, preds_a[vs.name][1]),
                         results_b=coco_results(vs, preds_b[vs.name][0], spec, preds_b[vs.name][1]))
        else:
            entry.update(gt=np.stack([s.keypoints for s in vs.samples]),
                         visible=np.stack([s.visible for s in vs.samples]),
                         pred_a=np.stack([k[:, :2] for k in preds_a[vs.name][0]]),
                         pred_b=np.stack([k[:, :2] for k in preds_b[vs.name][0]]))
        out.append(entry)
    return out
