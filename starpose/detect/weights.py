"""The detector weights shipped in the package (``starpose/assets/detector``)."""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

__all__ = ["DETECTOR_DIR", "DETECTOR_WEIGHTS", "detector_weights_metadata", "load_detector_weights"]

DETECTOR_DIR = Path(__file__).resolve().parent.parent / "assets" / "detector"
DETECTOR_WEIGHTS = DETECTOR_DIR / "nanodet_g_person.safetensors"


def detector_weights_metadata(path: Path = DETECTOR_WEIGHTS) -> dict:
    """The safetensors metadata of a detector weights file (source, licence, conversion)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return dict(f.metadata() or {})


def load_detector_weights(model: nn.Module, path: Path | str = DETECTOR_WEIGHTS) -> nn.Module:
    """Load a detector safetensors file into ``model`` (float32), strictly: a file that does not
    fit fails with the missing and unexpected keys and the shapes that differ."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: detector weights file not found")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from e
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(f"{path}: does not fit the detector (missing {missing[:5]}, unexpected {unexpected[:5]}, "
                         f"shape mismatches {shapes[:5]})")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model
