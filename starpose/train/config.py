"""Training configuration: one dataclass, plus the paper's recipes as named configs.

Paths in a named recipe are relative to ``--data-root`` and follow the StarPose/MMPose layout:

    data/coco/annotations/person_keypoints_{train,val}2017.json
    data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json
    data/coco/{train2017,val2017}/*.jpg
    data/crowdpose/annotations/mmpose_crowdpose_{trainval,test}.json, det_for_crowd_test_0.1_0.5.json
    data/crowdpose/images/*.jpg
    data/mpii/annotations/mpii_{train,val}.json, mpii_gt_val.mat ; data/mpii/images/*.jpg
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainConfig", "RECIPES", "get_recipe", "list_recipes"]


@dataclass(frozen=True)
class TrainConfig:
    variant: str = "starpose_t"
    dataset: str = "coco"  # coco | crowdpose | mpii — selects the PoseSpec and the metric
    train_ann: str = ""
    train_images: str = ""
    val_ann: str = ""
    val_images: str = ""
    val_det: str = ""  # COCO-results person detections for validation (empty: GT boxes)
    val_gt_mat: str = ""  # MPII only
    input_size: tuple[int, int] = (192, 256)  # (w, h)
    epochs: int = 260
    batch_size: int = 192
    base_lr: float = 1e-3
    auto_scale_lr_base_batch: int = 512  # lr = base_lr * total_batch / this (0 disables)
    weight_decay: float = 0.0
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    lr_steps: tuple[tuple[int, float], ...] = ((220, 0.1), (250, 0.5))  # (epoch, multiply lr by)
    augment: bool = True
    photometric: bool = False  # + HSV jitter, blur, coarse dropout (not in the release recipe)
    det_box_prob: float = 0.0  # crop from the person detector's box (mix sources with "boxes") this often
    truncate_prob: float = 0.0  # let the photo's edge cut through the person this often (keypoints beyond: unlabelled)
    distractor_prob: float = 0.0  # paste an unlabelled person from another photo beside the person this often
    flip_test: bool = True
    # also validate without flip (one pass, as predict and the exported artifacts run) and pick
    # best.safetensors by the mean of the two validation scores (mix training)
    val_no_flip: bool = False
    val_interval: int = 10
    num_workers: int = 2
    seed: int = 0
    amp: bool = True  # only on CUDA
    bf16: bool = False  # only on a CPU: autocast the forward pass to bfloat16 (fast with AVX512-BF16 / AMX)
    init_weights: str = ""  # checkpoint to start from ("" = random init)
    checkpoint_interval: int = 1
    # Several sources drawn with weights (starpose.data.mix): a mix file and/or --source entries
    mix: str = ""  # path of a mix JSON ("" = train_ann alone)
    mix_roots: tuple[tuple[str, str], ...] = ()  # {root} placeholder overrides
    mix_weights: tuple[tuple[str, float], ...] = ()  # per-source weight overrides
    sources: tuple[str, ...] = ()  # NAME=FORMAT:PATH[@WEIGHT] entries added to (or forming) the mix
    epoch_size: int = 0  # people per epoch of a mix (0: the mix file's, else every person once)
    swap_tolerant: tuple[str, ...] = ()  # mix sources whose left/right labels may swap (besides the file's)
    ema_decay: float = 0.0  # EMA of the weights (0 = off); validation and best weights use the EMA
    threads: int = 0  # torch intra-op threads (0 = leave as is)
    lr_schedule: str = "step"  # step (lr_steps) | cosine (to min_lr_ratio at the last epoch)
    min_lr_ratio: float = 0.01
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def resolve(self, data_root: str | Path | None) -> "TrainConfig":
        """Paths made absolute under ``data_root`` (absolute paths are kept)."""
        if data_root is None:
            return self
        root = Path(data_root)
        kw = {}
        for name in ("train_ann", "train_images", "val_ann", "val_images", "val_det", "val_gt_mat"):
            v = getattr(self, name)
            if v and not Path(v).is_absolute():
                kw[name] = str(root / v)
        return dataclasses.replace(self, **kw)

    def lr(self, world_size: int = 1) -> float:
        if not self.auto_scale_lr_base_batch:
            return self.base_lr
        return self.base_lr * self.batch_size * world_size / self.auto_scale_lr_base_batch

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_size"] = list(self.input_size)
        d["lr_steps"] = [list(s) for s in self.lr_steps]
        d["extra"] = dict(self.extra)
        d["mix_roots"] = dict(self.mix_roots)
        d["mix_weights"] = dict(self.mix_weights)
        d["sources"] = list(self.sources)
        d["swap_tolerant"] = list(self.swap_tolerant)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "input_size" in kw:
            kw["input_size"] = tuple(int(v) for v in kw["input_size"])
        if "lr_steps" in kw:
            kw["lr_steps"] = tuple((int(e), float(f)) for e, f in kw["lr_steps"])
        if "extra" in kw:
            kw["extra"] = tuple(sorted(dict(kw["extra"]).items()))
        for key in ("mix_roots", "mix_weights"):
            if key in kw:
                kw[key] = tuple(sorted(dict(kw[key]).items()))
        for key in ("sources", "swap_tolerant"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def override(self, **kw: Any) -> "TrainConfig":
        kw = {k: v for k, v in kw.items() if v is not None}
        if "input_size" in kw:
            kw["input_size"] = tuple(int(v) for v in kw["input_size"])
        return dataclasses.replace(self, **kw)


_COCO = dict(
    dataset="coco",
    train_ann="coco/annotations/person_keypoints_train2017.json",
    train_images="coco/train2017",
    val_ann="coco/annotations/person_keypoints_val2017.json",
    val_images="coco/val2017",
    val_det="coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json",
)
_CROWDPOSE = dict(
    dataset="crowdpose",
    train_ann="crowdpose/annotations/mmpose_crowdpose_trainval.json",
    train_images="crowdpose/images",
    val_ann="crowdpose/annotations/mmpose_crowdpose_test.json",
    val_images="crowdpose/images",
    val_det="crowdpose/annotations/det_for_crowd_test_0.1_0.5.json",
)
_MPII = dict(
    dataset="mpii",
    train_ann="mpii/annotations/mpii_train.json",
    train_images="mpii/images",
    val_ann="mpii/annotations/mpii_val.json",
    val_images="mpii/images",
    val_gt_mat="mpii/annotations/mpii_gt_val.mat",
    input_size=(256, 256),
)

RECIPES: dict[str, TrainConfig] = {}
for _v in ("t", "s", "m", "l"):
    RECIPES[f"coco_256x192_{_v}"] = TrainConfig(variant=f"starpose_{_v}", **_COCO)
    RECIPES[f"coco_384x288_{_v}"] = TrainConfig(variant=f"starpose_{_v}", input_size=(288, 384), **_COCO)
    RECIPES[f"crowdpose_256x192_{_v}"] = TrainConfig(variant=f"starpose_{_v}", **_CROWDPOSE)
    RECIPES[f"mpii_256x256_{_v}"] = TrainConfig(variant=f"starpose_{_v}", **_MPII)


def list_recipes() -> list[str]:
    return sorted(RECIPES)


def get_recipe(name: str) -> TrainConfig:
    if name not in RECIPES:
        raise KeyError(f"unknown config {name!r}; available: {', '.join(list_recipes())}")
    return RECIPES[name]
