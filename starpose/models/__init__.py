from .registry import create_model, list_models, register_model
from .starpose import SimCCHead, StarPose, StarPoseConfig  # noqa: F401  (registers the variants)

__all__ = ["create_model", "list_models", "register_model", "StarPose", "StarPoseConfig", "SimCCHead"]
