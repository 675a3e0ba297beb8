"""Person crops for calibration, quantization-aware training and evaluation, from any
COCO-format keypoints folder, through the same data pipeline training uses
(:class:`~starpose.data.CocoIndex` → :func:`~starpose.data.coco_gt_samples` →
:class:`~starpose.data.TopDownDataset`).

Calibration sees exactly what the deployed model sees: a ground-truth box made into a
centre/scale with the spec's padding, cut by the affine warp, normalized with the spec's
mean/std (the bundle does that normalization in-graph, before the quantized network). Crops are
not augmented for calibration (activation ranges of the deployment distribution); QAT uses the
training augmentations.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Subset

from starpose.data import AugmentConfig, CocoIndex, DataError, TopDownDataset, coco_gt_samples, collate
from starpose.spec import PoseSpec

__all__ = ["CocoSource", "resolve_coco_source", "person_dataset", "calibration_loader", "calibration_batches",
           "spread_indices"]


@dataclass(frozen=True)
class CocoSource:
    """A COCO person_keypoints annotation file and the folder its ``file_name``s are relative to."""

    ann_file: Path
    image_dir: Path

    def __str__(self) -> str:
        return f"{self.ann_file} (images in {self.image_dir})"


def resolve_coco_source(data: str | Path, images: str | Path | None = None) -> CocoSource:
    """``data`` is a COCO json (images next to it unless ``images`` is given) or a folder that
    holds exactly one ``*.json`` with ``images`` and ``annotations`` (and the images)."""
    path = Path(data)
    if path.is_dir():
        candidates = [p for p in sorted(path.glob("*.json")) if _is_keypoints_json(p)]
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "none"
            raise DataError(path, f"expected one COCO keypoints json in the folder, found {found}; "
                                  "pass the annotation file itself")
        path = candidates[0]
    elif not path.is_file():
        raise DataError(path, "no such annotation file or folder")
    image_dir = Path(images) if images is not None else path.parent
    if not image_dir.is_dir():
        raise DataError(image_dir, "images folder not found")
    return CocoSource(path, image_dir)


def _is_keypoints_json(path: Path) -> bool:
    import json

    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
        doc = json.loads(head) if len(head) < (1 << 20) else None
    except (OSError, ValueError):
        return False
    if doc is None:  # large file: trust the name
        return "keypoints" in path.name or "coco" in path.name
    return isinstance(doc, dict) and "annotations" in doc and "images" in doc


def person_dataset(
    source: CocoSource, spec: PoseSpec, *, train: bool = False, augment: bool = False, seed: int = 0
) -> TopDownDataset:
    """Every labelled non-crowd person of ``source`` as top-down crops; ``train`` adds SimCC targets,
    ``augment`` the training augmentations (flip, half body, box jitter)."""
    index = CocoIndex(source.ann_file, spec)
    samples = coco_gt_samples(index, source.image_dir)
    if not samples:
        raise DataError(source.ann_file, "no person with labelled keypoints")
    return TopDownDataset(samples, spec, train=train, augment=AugmentConfig() if augment else AugmentConfig.none(),
                          seed=seed, with_targets=train)


def spread_indices(n: int, limit: int) -> list[int]:
    """``limit`` distinct indices of ``range(n)`` spread evenly from the first (``i * n // limit``),
    or all of them when ``limit >= n``. Deterministic: the same file gives the same people."""
    if limit < 1:
        raise ValueError(f"calibration limit must be at least 1 person, got {limit}")
    if limit >= n:
        return list(range(n))
    return [i * n // limit for i in range(limit)]


def calibration_loader(
    source: CocoSource, spec: PoseSpec, *, batch_size: int = 8, limit: int | None = None, num_workers: int = 0
) -> DataLoader:
    """A DataLoader of normalized person crops (``batch["image"]``: (B, 3, H, W) float32), in file
    order; with ``limit``, at most that many people spread evenly over the file
    (:func:`spread_indices`), so a file ordered by video or subject is sampled across all of them."""
    ds = person_dataset(source, spec)
    if limit is not None:
        ds = Subset(ds, spread_indices(len(ds), limit))
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate)


def calibration_batches(loader: DataLoader) -> Iterator[torch.Tensor]:
    """The image tensors of a calibration loader."""
    for batch in loader:
        yield batch["image"]
