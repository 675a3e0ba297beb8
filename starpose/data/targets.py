"""SimCC targets and loss (MMPose ``SimCCLabel`` with Gaussian smoothing, ``KLDiscretLoss``)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["simcc_targets", "KLDiscretLoss", "limb_swap_groups", "LIMB_GROUPS"]

# Keypoint groups whose left and right labels crowd-sourced annotators swap together (Johnson &
# Everingham, CVPR 2011, model LSPET's annotation errors as such swaps): the arms and the legs.
LIMB_GROUPS: dict[str, tuple[str, ...]] = {
    "arms": ("shoulder", "elbow", "wrist"),
    "legs": ("hip", "knee", "ankle"),
}


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


def limb_swap_groups(keypoint_names) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each of :data:`LIMB_GROUPS` that the keypoints hold in full, its (left, right) index
    pairs, e.g. COCO-17's arms ``((5, 6), (7, 8), (9, 10))``. Names are ``left_X`` / ``right_X``."""
    index = {n: i for i, n in enumerate(keypoint_names)}
    groups = []
    for parts in LIMB_GROUPS.values():
        pairs = [(index.get(f"left_{p}"), index.get(f"right_{p}")) for p in parts]
        if all(a is not None and b is not None for a, b in pairs):
            groups.append(tuple(pairs))
    return tuple(groups)


class KLDiscretLoss(nn.Module):
    """KL divergence between softmax(pred * beta) and the (optionally softmaxed) labels,
    averaged over bins, weighted per keypoint, summed over the batch, divided by K (MMPose).

    ``swap_groups`` (see :func:`limb_swap_groups`) makes the loss tolerant of left/right label
    swaps for the people ``forward``'s ``swap_mask`` marks: for each group (the arms, the legs) such
    a person's loss is the smaller of the labels as given and the labels with the group's left and
    right exchanged. Everyone else, and every keypoint outside the groups, is scored as labelled.
    """

    def __init__(self, beta: float = 1.0, label_softmax: bool = False, use_target_weight: bool = True,
                 swap_groups: tuple[tuple[tuple[int, int], ...], ...] = ()) -> None:
        super().__init__()
        self.beta = beta
        self.label_softmax = label_softmax
        self.use_target_weight = use_target_weight
        self.swap_groups = tuple(tuple((int(a), int(b)) for a, b in g) for g in swap_groups)
        # the keypoint order with every group's left and right exchanged, and each group's keypoints
        self._swap_order: list[int] | None = None
        self._group_keypoints = [[i for pair in g for i in pair] for g in self.swap_groups]
        if self.swap_groups:
            k = 1 + max(i for idx in self._group_keypoints for i in idx)
            self._swap_order = list(range(k))
            for g in self.swap_groups:
                for a, b in g:
                    self._swap_order[a], self._swap_order[b] = b, a

    def _criterion(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_pt = F.log_softmax(pred * self.beta, dim=1)
        if self.label_softmax:
            target = F.softmax(target * self.beta, dim=1)
        return F.kl_div(log_pt, target, reduction="none").mean(dim=1)

    def per_keypoint(
        self,
        pred: tuple[torch.Tensor, torch.Tensor],
        target: tuple[torch.Tensor, torch.Tensor],
        weight: torch.Tensor,
    ) -> torch.Tensor:
        """The weighted loss of each person's each keypoint, x and y summed: (N, K)."""
        n, k = pred[0].shape[:2]
        w = weight.reshape(n, k) if self.use_target_weight else 1.0
        loss = pred[0].new_zeros((n, k))
        for p, t in zip(pred, target):
            loss = loss + self._criterion(p.reshape(-1, p.shape[-1]), t.reshape(-1, t.shape[-1])).reshape(n, k) * w
        return loss

    def forward(
        self,
        pred: tuple[torch.Tensor, torch.Tensor],
        target: tuple[torch.Tensor, torch.Tensor],
        weight: torch.Tensor,
        swap_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        k = pred[0].shape[1]
        if swap_mask is None or not self.swap_groups or not bool(swap_mask.any()):
            w = weight.reshape(-1) if self.use_target_weight else 1.0
            loss = pred[0].new_zeros(())
            for p, t in zip(pred, target):
                loss = loss + (self._criterion(p.reshape(-1, p.shape[-1]), t.reshape(-1, t.shape[-1])) * w).sum()
            return loss / k
        per = self.per_keypoint(pred, target, weight)
        order = torch.as_tensor(self._swap_order + list(range(len(self._swap_order), k)), device=per.device)
        # the labels with every group swapped; each group then picks its own assignment
        swapped = self.per_keypoint(pred, tuple(t[:, order] for t in target), weight.reshape(per.shape)[:, order])
        mask = swap_mask.reshape(-1).to(device=per.device, dtype=torch.bool)
        in_group = torch.zeros(k, dtype=torch.bool, device=per.device)
        loss = per.new_zeros(())
        for keypoints in self._group_keypoints:
            idx = torch.as_tensor(keypoints, device=per.device)
            in_group[idx] = True
            as_labelled = per[:, idx].sum(dim=1)
            loss = loss + torch.where(mask, torch.minimum(as_labelled, swapped[:, idx].sum(dim=1)), as_labelled).sum()
        return (loss + per[:, ~in_group].sum()) / k
