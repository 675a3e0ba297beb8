"""StarPose Mobile: the StarPose network, its data, training, evaluation and model contract.

The network names (``StarPose``, ``create_model``, ...) are loaded on first use, so that
``import starpose.spec`` (and the metadata code built on it) does not import torch: a TFLite or
ONNX Runtime process (``starpose-mobile bench``'s workers) then measures its runtime alone.
"""
from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING, Any

from . import _quiet
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
