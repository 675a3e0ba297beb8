"""Pretrained weights shipped inside the package (``starpose/assets/weights``)."""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from ..fileio import file_sha256

__all__ = ["weights_path", "load_pretrained", "available_pretrained", "file_sha256"]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "weights"


def weights_path(variant: str) -> Path:
    return WEIGHTS_DIR / f"{variant}.safetensors"


def available_pretrained() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.is_dir() else []


def load_pretrained(model: nn.Module, variant: str) -> nn.Module:
    from .checkpoint import load_into

    path = weights_path(variant)
    if not path.is_file():
        have = ", ".join(available_pretrained()) or "none"
        raise FileNotFoundError(
            f"no pretrained weights for {variant} in the package ({path}); available: {have}"
        )
    load_into(model, path)
    _warn_if_interim(path)
    return model


def _warn_if_interim(path: Path) -> None:
    """Packaged weights whose recipe has not reached its accuracy target say so when loaded."""
    import warnings

    from safetensors import safe_open

    from .._quiet import StarPoseWarning

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("status", "release") != "release":
        if "coco_heldout_ap" in meta:
            numbers = (f"OKS AP {meta['coco_heldout_ap']} on held-out COCO people and "
                       f"{meta.get('coco_fixture_ap_gt_boxes', '?')} on the COCO fixture, ground-truth boxes")
        else:
            numbers = f"OKS AP {meta.get('coco_fixture_ap_gt_boxes', '?')} with ground-truth boxes on the COCO fixture"
        warnings.warn(
            f"{path.name} is an interim checkpoint ({meta.get('epochs', '?')} epochs; {numbers}): it has not "
            "reached the accuracy goals of its recipe yet; see docs/MODEL_CARD.md",
            StarPoseWarning,
            stacklevel=3,
        )


def load_model(variant: str = "starpose_t", weights: str = "default", **overrides) -> nn.Module:
    """Build ``variant`` with ``weights``: ``"default"`` (the packaged weights), ``"random"``
    (random init, for latency work only) or a checkpoint path (safetensors, our ``.pt`` training
    checkpoints' ``model`` entry, or a released MMPose ``.pth``). Returned in eval mode."""
    from .checkpoint import head_input_size, load_into, read_weights
    from .registry import create_model

    name = variant if variant.startswith("starpose_") else f"starpose_{variant}"
    if weights == "default":
        model = create_model(name, pretrained=True, **overrides)
    elif weights == "random":
        model = create_model(name, **overrides)
    else:
        state = read_weights(weights)
        size = head_input_size(state)
        if size and "input_size" not in overrides:  # weights trained at another input size run at it
            overrides["input_size"] = size
        model = create_model(name, **overrides)
        load_into(model, state, where=str(weights))
    return model.eval()


def default_keypoint_threshold(variant: str, weights: str = "default") -> float:
    """Score above which a keypoint is drawn/tracked. SimCC scores are raw logit maxima whose scale
    depends on training; packaged weights record a calibrated value in their metadata
    (``keypoint_threshold``), anything else gets 0.3."""
    if weights != "default":
        return 0.3
    path = weights_path(variant if variant.startswith("starpose_") else f"starpose_{variant}")
    if not path.is_file():
        return 0.3
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    return float(meta.get("keypoint_threshold", 0.3))
