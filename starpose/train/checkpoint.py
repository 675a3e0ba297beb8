"""Atomic training checkpoints, readable with ``torch.load(weights_only=True)``."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

from ..fileio import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "save_weights", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    state = {"version": CHECKPOINT_VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable training checkpoint (torch.save writes a zip archive; this file "
                         "is not one: truncated, or another kind of file)")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a readable training checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise ValueError(f"{path}: not a starpose training checkpoint (no 'model'/'epoch' entries)")
    return state


def save_weights(path: str | Path, model: torch.nn.Module, metadata: dict[str, str] | None = None) -> Path:
    """Model weights only, as safetensors (what ships and what exporters load)."""
    from safetensors.torch import save_file

    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(sd, tmp, metadata=metadata or {}))
