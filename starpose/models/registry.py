"""Name → constructor table for the registered StarPose variants (timm's ``register_model``)."""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

__all__ = ["register_model", "create_model", "list_models"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, pretrained: bool = False, **overrides) -> nn.Module:
    """Build a registered variant; ``overrides`` change its config (e.g. ``input_size=(288, 384)``,
    ``num_keypoints=14``, ``spec=CROWDPOSE_SPEC``)."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    return _MODELS[name](pretrained=pretrained, **overrides)
