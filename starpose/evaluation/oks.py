"""OKS, OKS-NMS and COCO keypoint AP through the reference implementations (pycocotools,
xtcocotools for CrowdPose)."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..fileio import atomic_write_json

__all__ = ["oks_iou", "oks_nms", "coco_keypoint_eval", "keypoint_similarity", "COCO_STAT_NAMES", "CROWDPOSE_STAT_NAMES",
           "write_results"]

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
CROWDPOSE_STAT_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP(E)", "AP(M)", "AP(H)")


def oks_iou(kpts: np.ndarray, others: np.ndarray, area: float, other_areas: np.ndarray,
            sigmas: Sequence[float], vis_thr: float | None = None,
            scores: np.ndarray | None = None, other_scores: np.ndarray | None = None) -> np.ndarray:
    """OKS between one pose (K, 2) and others (N, K, 2) (MMPose's ``oks_iou``)."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    var = (sigmas * 2) ** 2
    d2 = ((others - kpts[None]) ** 2).sum(-1)
    e = d2 / var / ((area + other_areas[:, None]) / 2 + np.spacing(1)) / 2
    if vis_thr is not None and scores is not None and other_scores is not None:
        ind = (scores[None] > vis_thr) & (other_scores > vis_thr)
        e = np.where(ind, e, np.inf)
    val = np.exp(-e)
    if vis_thr is not None and scores is not None and other_scores is not None:
        n = np.maximum(ind.sum(-1), 1)
        return val.sum(-1) / n
    return val.mean(-1)


def keypoint_similarity(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, areas: np.ndarray,
                        sigmas: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per keypoint, the mean of OKS's per-keypoint term ``exp(-d² / (2 · area · (2σ)²))`` over the
    people who label it, and how many do: ``(mean (K,), count (K,))``, the mean NaN where nobody does.

    ``pred`` and ``gt`` are (N, K, 2) pixel coordinates of the same N people (a pose predicted from
    each person's own box), ``visible`` (N, K) their labels (> 0: labelled), ``areas`` (N,) the
    scale COCO's evaluation uses (the annotation's ``area``; CrowdPose: box w x h x 0.53). A person's
    OKS, as pycocotools computes it for that pair, is the mean of their labelled keypoints' terms:
    1 is exact, 0.5 is the localisation error OKS 0.5 tolerates for that keypoint.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    labelled = np.asarray(visible) > 0
    var = (np.asarray(sigmas, np.float64) * 2) ** 2
    d2 = ((pred - gt) ** 2).sum(-1)
    term = np.exp(-d2 / var[None] / (np.asarray(areas, np.float64)[:, None] + np.spacing(1)) / 2)
    count = labelled.sum(0)
    total = np.where(labelled, term, 0.0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean, count


def oks_nms(poses: list[dict], thr: float, sigmas: Sequence[float], vis_thr: float | None = None) -> list[int]:
    """Greedy OKS non-maximum suppression over one image's poses (each with keypoints (K, 3),
    score, area). Returns the kept indices."""
    if not poses:
        return []
    scores = np.array([p["score"] for p in poses])
    kpts = np.array([np.asarray(p["keypoints"])[:, :2] for p in poses])
    kscores = np.array([np.asarray(p["keypoints"])[:, 2] for p in poses])
    areas = np.array([p["area"] for p in poses])
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        if rest.size == 0:
            break
        ious = oks_iou(kpts[i], kpts[rest], areas[i], areas[rest], sigmas, vis_thr, kscores[i], kscores[rest])
        order = rest[ious <= thr]
    return keep


def write_results(results: list[dict] | dict, path: str | Path) -> Path:
    """Write COCO keypoint results (or any JSON document) atomically."""
    return atomic_write_json(path, results)


def _import_xtcocotools():
    try:
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval
    except ImportError as e:
        raise ImportError(
            f"CrowdPose evaluation needs xtcocotools ({e}); install it with: pip install 'starpose-mobile[eval]'"
        ) from e
    except ValueError as e:  # "numpy.dtype size changed": a wheel compiled against numpy 1
        raise ImportError(
            f"xtcocotools does not load with this numpy ({e}); its published wheel targets numpy 1, build it from "
            "source: pip install cython setuptools wheel && pip install --no-build-isolation --no-binary xtcocotools "
            "--force-reinstall xtcocotools"
        ) from e
    return COCO, COCOeval


def coco_keypoint_eval(
    gt_json: str | Path,
    results: list[dict] | str | Path,
    sigmas: Sequence[float],
    mode: str = "coco",
    verbose: bool = False,
) -> dict[str, float]:
    """OKS AP/AR of keypoint results (COCO results list or file) against a person_keypoints json.

    ``mode="coco"`` uses pycocotools; ``mode="crowdpose"`` uses xtcocotools' ``keypoints_crowd``
    (easy / medium / hard AP by crowd index).
    """
    if isinstance(results, (str, Path)):
        with open(results) as f:
            results = json.load(f)
    if not results:
        names = COCO_STAT_NAMES if mode == "coco" else CROWDPOSE_STAT_NAMES
        return {n: 0.0 for n in names}
    sink = io.StringIO()
    redirect = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(sink)
    with redirect:
        if mode == "coco":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            gt = COCO(str(gt_json))
            dt = gt.loadRes(list(results))
            ev = COCOeval(gt, dt, "keypoints")
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            names = COCO_STAT_NAMES
        elif mode == "crowdpose":
            COCO, COCOeval = _import_xtcocotools()

            gt = COCO(str(gt_json))
            dt = gt.loadRes(list(results))
            ev = COCOeval(gt, dt, "keypoints_crowd", np.asarray(sigmas, dtype=np.float64), use_area=False)
            ev.params.useSegm = None
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            names = CROWDPOSE_STAT_NAMES
        else:
            raise ValueError(f"unknown evaluation mode {mode!r}")
    return {n: float(v) for n, v in zip(names, ev.stats)}
