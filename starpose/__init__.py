"""StarPose Mobile: the StarPose network, its data, training, evaluation and model contract.

The network names (``StarPose``, ``create_model``, ...) are loaded on first use, so that
``import starpose.spec`` (and the metadata code built on it) does not import torch: a TFLite or
ONNX Runtime process (``starpose-mobile bench``'s workers) then measures its runtime alone.
"""
from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from . import _quiet
from ._lazy import lazy_attributes
from .spec import COCO_SPEC, CROWDPOSE_SPEC, MPII_SPEC, SPECS, PoseSpec

_quiet.install()

_LAZY = {
    "StarPose": ".models",
    "StarPoseConfig": ".models",
    "create_model": ".models",
    "list_models": ".models",
    "load_mmpose_checkpoint": ".models.checkpoint",
    "CheckpointError": ".models.checkpoint",
}

if TYPE_CHECKING:
    from .models import StarPose, StarPoseConfig, create_model, list_models
    from .models.checkpoint import CheckpointError, load_mmpose_checkpoint


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())

__all__ = [
    "__version__",
    "StarPose",
    "StarPoseConfig",
    "create_model",
    "list_models",
    "load_mmpose_checkpoint",
    "CheckpointError",
    "PoseSpec",
    "COCO_SPEC",
    "CROWDPOSE_SPEC",
    "MPII_SPEC",
    "SPECS",
]
