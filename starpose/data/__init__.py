"""Data: COCO-format readers, top-down crops, augmentations and SimCC targets."""
from .coco import CocoIndex, coco_det_samples, coco_gt_samples, load_coco_annotations
from .errors import DataError
from .targets import KLDiscretLoss, simcc_targets
from .topdown import PersonSample, TopDownDataset, collate, read_image_rgb
from .transforms import AugmentConfig

__all__ = [
    "AugmentConfig", "CocoIndex", "DataError", "KLDiscretLoss", "PersonSample", "TopDownDataset",
    "coco_det_samples", "coco_gt_samples", "collate", "load_coco_annotations", "read_image_rgb", "simcc_targets",
]
