"""Distillation data: an offline BlazePose teacher (MediaPipe, Apache-2.0, run with LiteRT) and
the conversion of its readings into COCO person_keypoints pseudo-labels.

``recipes/default_weights/`` drives it: ``gather.py`` collects images from registry packages,
``label.py`` runs the teacher and writes the COCO files. Importing this package loads no model.
"""
from __future__ import annotations

from .mapping import BLAZEPOSE_FLIP_PAIRS, BLAZEPOSE_LANDMARKS, BLAZEPOSE_TO_COCO, blazepose_to_coco, flip_blazepose

__all__ = [
    "BLAZEPOSE_LANDMARKS",
    "BLAZEPOSE_FLIP_PAIRS",
    "BLAZEPOSE_TO_COCO",
    "blazepose_to_coco",
    "flip_blazepose",
]
