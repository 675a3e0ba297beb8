"""Evaluation: OKS AP/AR (pycocotools / xtcocotools) and MPII PCKh."""
from .oks import COCO_STAT_NAMES, CROWDPOSE_STAT_NAMES, coco_keypoint_eval, oks_iou, oks_nms, write_results

__all__ = ["COCO_STAT_NAMES", "CROWDPOSE_STAT_NAMES", "coco_keypoint_eval", "oks_iou", "oks_nms", "write_results"]
