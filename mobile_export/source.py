"""Which network gets exported: variant + weights (packaged, a file, or seeded random init),
and the reference model that ``verify`` rebuilds from an artifact's metadata."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from starpose.spec import PoseSpec

from .metadata import WeightsInfo, spec_from_metadata, state_dict_sha256

__all__ = ["WeightsError", "resolve_model", "reference_model", "deploy_network", "WEIGHTS_CHOICES"]

WEIGHTS_CHOICES = "PATH|default|random"


class WeightsError(ValueError):
    """Weights that cannot be found or do not fit."""


def resolve_model(
    variant: str, weights: str | Path = "default", *, seed: int = 0, spec: PoseSpec | None = None
) -> tuple[nn.Module, WeightsInfo]:
    """Build ``variant`` in eval mode with its weights.

    ``weights``: ``"default"`` (the packaged pretrained weights), ``"random"`` (initialised after
    ``torch.manual_seed(seed)``; for latency work and tests), or a path to a released MMPose
    ``.pth`` or a ``.safetensors`` state dict.
    """
    from starpose import create_model
    from starpose.models.checkpoint import CheckpointError, head_input_size, load_into, read_weights
    from starpose.models.weights import available_pretrained, file_sha256, weights_path

    overrides: dict[str, Any] = {} if spec is None else {"spec": spec}
    if weights == "default":
        if variant not in available_pretrained():
            have = ", ".join(available_pretrained()) or "none yet"
            raise WeightsError(
                f"no packaged pretrained weights for {variant} (packaged: {have}); pass --weights PATH "
                "(a released MMPose .pth or a .safetensors state dict) or --weights random "
                "(random initialisation, for latency work; recorded as such in the metadata)"
            )
        model = create_model(variant, pretrained=True, **overrides)
        path = weights_path(variant)
        info = WeightsInfo(name=f"{variant}-pretrained", sha256=file_sha256(path), source="pretrained")
    elif weights == "random":
        torch.manual_seed(seed)
        model = create_model(variant, **overrides)
        info = WeightsInfo(name=f"random-seed{seed}", sha256=state_dict_sha256(model.state_dict()),
                           source="random", seed=seed)
    else:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found (expected a path, 'default' or 'random')")
        try:
            state = read_weights(path)
            size = head_input_size(state)
            if size and spec is None:  # weights trained at another input size export at it
                overrides["input_size"] = size
            model = create_model(variant, **overrides)
            load_into(model, state, where=str(path))
        except CheckpointError as e:
            raise WeightsError(str(e)) from e
        info = WeightsInfo(name=path.stem, sha256=file_sha256(path), source="file")
    return model.eval(), info


def reference_model(meta: dict[str, Any], weights: str | Path | None = None) -> nn.Module:
    """The eager model an artifact was exported from, rebuilt from its metadata: seeded random
    init and packaged weights are rebuilt directly; a weights file must be passed. The weights'
    sha256 must equal the metadata's, so parity is never measured against the wrong model."""
    m = meta["model"]
    source = m.get("weights_source", "unknown")
    spec = spec_from_metadata(meta)
    if weights is None:
        if source == "random" and "seed" in m:
            weights = "random"
        elif source == "pretrained":
            weights = "default"
        else:
            raise WeightsError(
                f"the artifact was exported from weights '{m['weights']}' (sha256 {m['weights_sha256'][:12]}…); "
                "pass that file with --weights PATH so that verify can run the eager reference"
            )
    model, info = resolve_model(m["variant"], weights, seed=int(m.get("seed", 0)), spec=spec)
    if info.sha256 != m["weights_sha256"]:
        raise WeightsError(
            f"the reference weights ({info.name}, sha256 {info.sha256[:12]}…) are not the ones the artifact "
            f"was exported from ({m['weights']}, sha256 {m['weights_sha256'][:12]}…)"
        )
    return model


def deploy_network(model: nn.Module) -> nn.Module:
    """The network that goes into artifacts: a StarPose model's deploy form (a copy with the same
    outputs, built from ops that XNNPACK and LiteRT delegate whole); any other network (already
    deployed, or a peer model) as it is. Parity is always measured against the eager model."""
    from starpose.models import StarPose
    from starpose.models.deploy import reparameterize_model

    return reparameterize_model(model) if isinstance(model, StarPose) else model.eval()
