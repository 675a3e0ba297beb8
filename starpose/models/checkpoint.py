"""Load released StarPose checkpoints (MMPose ``.pth``) and our own safetensors, safely.

A released checkpoint is an MMPose/mmengine ``.pth``: ``{"meta": {...}, "state_dict": {...}}``
where ``meta`` holds mmengine and numpy objects. We never unpickle arbitrary objects: the file is
read with ``torch.load(weights_only=True)``, and every non-tensor global the file names (found
with ``torch.serialization.get_unsafe_globals_in_checkpoint``, without executing anything) is
bound to an inert placeholder class that only stores its arguments. Tensors come through torch's
own restricted rebuild functions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

__all__ = ["CheckpointError", "load_mmpose_checkpoint", "read_state_dict", "map_release_keys"]

_PREFIXES = ("model.", "module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model (``missing``/``unexpected``
    hold the full key lists when it does not fit)."""

    def __init__(self, message: str, missing: list[str] | None = None, unexpected: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = missing or []
        self.unexpected = unexpected or []


class _Inert:
    """Stand-in for a non-tensor object in a checkpoint's metadata: stores, never executes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __call__(self, *args: Any, **kwargs: Any) -> "_Inert":
        return _Inert(*args, **kwargs)


def _inert_class(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (_Inert,), {"__module__": "starpose.models.checkpoint"})


def _torch_load_inert(path: Path) -> Any:
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as e:  # not a zip checkpoint, truncated, …
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({e})") from e
    safe = [(_inert_class(name), name) for name in unsafe]
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: could not load with weights_only=True ({e})") from e


def read_state_dict(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint: a ``.safetensors`` file, a ``.pth``/``.pt`` file (MMPose or plain),
    or an in-memory mapping. Prefixes such as ``model.`` / ``module.`` are stripped."""
    if isinstance(source, Mapping):
        obj: Any = dict(source)
        where = "<state dict>"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            try:
                obj = load_file(str(path))
            except Exception as e:
                raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
        else:
            obj = _torch_load_inert(path)
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    elif isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where}: expected a state dict, found {type(obj).__name__}")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        k = str(key)
        changed = True
        while changed:
            changed = False
            for p in _PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p):], True
        out[k] = value
    if not out:
        raise CheckpointError(f"{where}: no tensors in the checkpoint")
    return out


def map_release_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Released MMPose key names → ours. Our modules keep the release's names, so this is the
    identity apart from dropping the neck (parameter-free in the release) and data preprocessor."""
    return {k: v for k, v in state.items() if not k.startswith(("neck.", "data_preprocessor."))}


def _describe(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


_HEAD_KEYS = ("head.mlp_head_x.weight", "head.mlp_head_y.weight")


def head_input_size(state: Mapping[str, torch.Tensor], split_ratio: float = 2.0) -> tuple[int, int] | None:
    """The (width, height) input a state dict's SimCC head was built for (its x / y classifiers are
    ``input side * split_ratio`` bins long), or None when it holds no such head. Commands without an
    input-size option build the model at this size, so that weights trained at 384x288 or 128x96 run as
    they were trained."""
    if not all(k in state and state[k].ndim == 2 for k in _HEAD_KEYS):
        return None
    w, h = (int(round(state[k].shape[0] / split_ratio)) for k in _HEAD_KEYS)
    return (w, h) if w > 0 and h > 0 else None


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A weights file's tensors under our key names (read once: ``head_input_size`` and ``load_into`` take
    the result)."""
    return map_release_keys(read_state_dict(path))


def _input_size_hint(model: nn.Module, state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> str | None:
    """When only the SimCC head's sizes differ, the checkpoint was trained at another input size: say which."""
    ratio = getattr(getattr(model, "spec", None), "simcc_split_ratio", None)
    differing = {k for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape)}
    if not ratio or not differing or not all(k.startswith("head.") for k in differing):
        return None
    size, built = head_input_size(state, ratio), head_input_size(own, ratio)
    if size is None or size == built:  # another head (e.g. another keypoint count), not another input size
        return None
    (w, h), (mw, mh) = size, built
    return (f"only the head differs: the checkpoint was trained at a {h}x{w} input (height x width), the model "
            f"was built for {mh}x{mw}; build it at {h}x{w} (eval / train: --input-size {h}x{w})")


def load_into(model: nn.Module, source: str | os.PathLike | Mapping[str, Any], where: str | None = None) -> nn.Module:
    """Strictly load a checkpoint into ``model``; a foreign checkpoint gets a clear error naming ``where``
    (default: the file, or ``<state dict>`` for a mapping, e.g. one ``read_weights`` gave)."""
    where = where or ("<state dict>" if isinstance(source, Mapping) else str(source))
    state = map_release_keys(read_state_dict(source))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        variant = getattr(model, "variant", type(model).__name__)
        parts = [f"{where} does not fit {variant}:"]
        if missing:
            parts.append(f"{len(missing)} missing keys: {_describe(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_describe(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches: {_describe(shapes, 6)}")
            hint = _input_size_hint(model, state, own) if not (missing or unexpected) else None
            if hint:
                parts.append(hint)
        raise CheckpointError("\n  ".join(parts), missing, unexpected)
    model.load_state_dict(state, strict=True)
    return model


def load_mmpose_checkpoint(
    source: str | os.PathLike | Mapping[str, Any], variant: str, **overrides: Any
) -> nn.Module:
    """Build ``variant`` (``"t"`` or ``"starpose_t"``) and load a released checkpoint into it."""
    from .registry import create_model, list_models

    name = variant if variant.startswith("starpose_") else f"starpose_{variant}"
    if name not in list_models():
        raise CheckpointError(f"unknown variant {variant!r}; one of {', '.join(list_models())}")
    model = create_model(name, **overrides)
    load_into(model, source)
    return model.eval()
