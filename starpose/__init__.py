"""StarPose Mobile: the StarPose network, its data, training, evaluation and model contract."""
from __future__ import annotations

__version__ = "0.1.0"

from . import _quiet

_quiet.install()

from .models import StarPose, StarPoseConfig, create_model, list_models
from .models.checkpoint import CheckpointError, load_mmpose_checkpoint
from .spec import COCO_SPEC, CROWDPOSE_SPEC, MPII_SPEC, SPECS, PoseSpec

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
