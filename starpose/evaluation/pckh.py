"""MPII PCKh, computed the standard way against ``mpii_gt_val.mat`` (head-normalized with the
0.6 head-box bias, MPII's ``jnt_missing``; pelvis and thorax excluded from the mean)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.errors import DataError
from ..spec import PoseSpec

__all__ = ["pckh_from_mat", "pckh", "evaluate_mpii", "load_mpii_gt_mat", "PCKH_NAMES"]

SC_BIAS = 0.6
PCKH_NAMES = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "PCKh", "PCKh@0.1")


def load_mpii_gt_mat(path: str | Path) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "MPII ground truth (mpii_gt_val.mat) not found")
    try:
        mat = loadmat(str(path))
    except Exception as e:
        raise DataError(path, f"not a readable .mat file ({e})") from e
    for key in ("jnt_missing", "pos_gt_src", "headboxes_src"):
        if key not in mat:
            raise DataError(path, f"missing '{key}' (not an mpii_gt_val.mat)")
    return {k: mat[k] for k in ("jnt_missing", "pos_gt_src", "headboxes_src")}


def pckh(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, head_sizes: np.ndarray,
         thresholds=(0.5, 0.1)) -> dict[str, float]:
    """PCKh table from predictions (N, 16, 2), GT (N, 16, 2) in the same frame, visibility (N, 16)
    and head sizes (N,) (already multiplied by the 0.6 bias)."""
    err = np.linalg.norm(pred - gt, axis=-1) / head_sizes[:, None]  # N, 16
    vis = visible.astype(bool)
    jnt_count = vis.sum(0).astype(np.float64)  # 16
    out = {}
    per_thr = {}
    for thr in thresholds:
        hit = (err <= thr) & vis
        per_thr[thr] = 100.0 * hit.sum(0) / np.maximum(jnt_count, 1)
    mask = np.ones(16, dtype=bool)
    mask[6:8] = False  # pelvis, thorax
    ratio = np.where(mask, jnt_count, 0) / max(np.where(mask, jnt_count, 0).sum(), 1)
    p = per_thr[0.5]
    out["Head"] = float(p[9])
    out["Shoulder"] = float(0.5 * (p[13] + p[12]))
    out["Elbow"] = float(0.5 * (p[14] + p[11]))
    out["Wrist"] = float(0.5 * (p[15] + p[10]))
    out["Hip"] = float(0.5 * (p[3] + p[2]))
    out["Knee"] = float(0.5 * (p[4] + p[1]))
    out["Ankle"] = float(0.5 * (p[5] + p[0]))
    out["PCKh"] = float((p * ratio).sum())
    if 0.1 in per_thr:
        out["PCKh@0.1"] = float((per_thr[0.1] * ratio).sum())
    return out


def pckh_from_mat(pred_0based: np.ndarray, gt_mat: str | Path | dict) -> dict[str, float]:
    """PCKh of predictions (N, 16, 2; 0-based pixels, in the val order) against the .mat file."""
    mat = gt_mat if isinstance(gt_mat, dict) else load_mpii_gt_mat(gt_mat)
    pos_gt = np.transpose(mat["pos_gt_src"], (2, 0, 1)).astype(np.float64)  # N, 16, 2 (1-based)
    visible = 1 - np.transpose(mat["jnt_missing"], (1, 0))  # N, 16
    heads = mat["headboxes_src"]  # 2, 2, N
    head_sizes = np.linalg.norm(heads[1] - heads[0], axis=0) * SC_BIAS
    if pred_0based.shape[0] != pos_gt.shape[0]:
        raise ValueError(f"{pred_0based.shape[0]} predictions for {pos_gt.shape[0]} people in the .mat file")
    return pckh(pred_0based + 1.0, pos_gt, visible, head_sizes)


@torch.no_grad()
def evaluate_mpii(model: torch.nn.Module, spec: PoseSpec, ann_file, image_root, gt_mat=None, *, flip: bool = True,
                  batch_size: int = 32, results_out=None, progress: bool = False) -> dict:
    """PCKh of ``model`` on an MPII json: against ``gt_mat`` (the standard protocol) when given,
    else against the json's own joints with :func:`head_sizes_from_joints` as head size."""
    from ..data.mpii import mpii_samples
    from ..data.topdown import TopDownDataset
    from ..inference import run_topdown

    samples = mpii_samples(ann_file, image_root)
    ds = TopDownDataset(samples, spec, train=False)
    preds = run_topdown(model, ds, spec, batch_size=batch_size, flip=flip, progress=progress, desc="evaluate")
    kpts = np.stack([p["keypoints"][:, :2] for p in preds])
    if results_out is not None:
        from .oks import write_results

        write_results([{"image": s.extra["image"], "keypoints": p["keypoints"].tolist()}
                       for s, p in zip(samples, preds)], results_out)
    if gt_mat:
        metrics = pckh_from_mat(kpts, gt_mat)
    else:
        gt = np.stack([s.keypoints for s in samples])
        vis = np.stack([s.visible for s in samples])
        metrics = pckh(kpts, gt, vis, head_sizes_from_joints(gt))
    return {"metrics": metrics, "num_people": len(samples), "keypoints": kpts}


def head_sizes_from_joints(joints: np.ndarray) -> np.ndarray:
    """Fallback head size when no mpii_gt_val.mat is given: the upper-neck → head-top segment
    (joints 8 and 9). MPII's head box diagonal x 0.6 is close to it; report which one was used."""
    return np.maximum(np.linalg.norm(joints[:, 9] - joints[:, 8], axis=-1), 1.0)
