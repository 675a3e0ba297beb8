"""SimCC targets and loss (MMPose ``SimCCLabel`` with Gaussian smoothing, ``KLDiscretLoss``)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["simcc_targets", "KLDiscretLoss"]


def simcc_targets(
    keypoints: np.ndarray,
    visible: np.ndarray,
    input_size: tuple[int, int],
    split_ratio: float = 2.0,
    sigma: tuple[float, float] = (3.0, 3.0),
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D Gaussian labels for keypoints (K, 2) in crop pixels.

    Returns ``(target_x (K, Wx), target_y (K, Hy), weights (K,))``; a keypoint that is not
    visible, or whose Gaussian lies wholly outside the crop, gets weight 0.
    """
    k = keypoints.shape[0]
    wx = int(round(input_size[0] * split_ratio))
    hy = int(round(input_size[1] * split_ratio))
    tx = np.zeros((k, wx), dtype=np.float32)
    ty = np.zeros((k, hy), dtype=np.float32)
    weights = (np.asarray(visible) > 0).astype(np.float32)
    mu = np.asarray(keypoints, dtype=np.float64) * split_ratio
    xs = np.arange(wx, dtype=np.float64)
    ys = np.arange(hy, dtype=np.float64)
    for i in range(k):
        if weights[i] < 0.5:
            continue
        mx, my = mu[i]
        left, top = mx - 3 * sigma[0], my - 3 * sigma[1]
        right, bottom = mx + 3 * sigma[0] + 1, my + 3 * sigma[1] + 1
        if left >= wx or top >= hy or right < 0 or bottom < 0:
            weights[i] = 0.0
            continue
        tx[i] = np.exp(-((xs - mx) ** 2) / (2 * sigma[0] ** 2))
        ty[i] = np.exp(-((ys - my) ** 2) / (2 * sigma[1] ** 2))
    if normalize:
        tx /= sigma[0] * np.sqrt(2 * np.pi)
        ty /= sigma[1] * np.sqrt(2 * np.pi)
    return tx, ty, weights


class KLDiscretLoss(nn.Module):
    """KL divergence between softmax(pred * beta) and the (optionally softmaxed) labels,
    averaged over bins, weighted per keypoint, summed over the batch, divided by K (MMPose)."""

    def __init__(self, beta: float = 1.0, label_softmax: bool = False, use_target_weight: bool = True) -> None:
        super().__init__()
        self.beta = beta
        self.label_softmax = label_softmax
        self.use_target_weight = use_target_weight

    def _criterion(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_pt = F.log_softmax(pred * self.beta, dim=1)
        if self.label_softmax:
            target = F.softmax(target * self.beta, dim=1)
        return F.kl_div(log_pt, target, reduction="none").mean(dim=1)

    def forward(
        self,
        pred: tuple[torch.Tensor, torch.Tensor],
        target: tuple[torch.Tensor, torch.Tensor],
        weight: torch.Tensor,
    ) -> torch.Tensor:
        k = pred[0].shape[1]
        w = weight.reshape(-1) if self.use_target_weight else 1.0
        loss = pred[0].new_zeros(())
        for p, t in zip(pred, target):
            loss = loss + (self._criterion(p.reshape(-1, p.shape[-1]), t.reshape(-1, t.shape[-1])) * w).sum()
        return loss / k
