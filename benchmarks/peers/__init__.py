"""Faithful plain-PyTorch re-implementations of the networks StarPose is compared with.

Each peer matches MMPose's state-dict keys and shapes, its parameter count and its MACs (see
``../shared/reference/peers_manifest.json``); weights are random, since latency does not depend
on them.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from .common import TopDownPeer, calibrate_batchnorm
from .litehrnet import litehrnet_18, litehrnet_30
from .rtmpose import rtmpose_s, rtmpose_t

__all__ = ["PEERS", "create_peer", "list_peers", "TopDownPeer", "calibrate_batchnorm"]

PEERS: dict[str, Callable[..., TopDownPeer]] = {
    "litehrnet_18": litehrnet_18,
    "litehrnet_30": litehrnet_30,
    "rtmpose_t": rtmpose_t,
    "rtmpose_s": rtmpose_s,
}


def list_peers() -> list[str]:
    return sorted(PEERS)


def create_peer(name: str, num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256),
                calibrate: bool = True, seed: int = 0) -> nn.Module:
    """Build a peer network with random weights, in eval mode; ``input_size`` is (w, h).

    ``calibrate`` sets the BatchNorm statistics from one random batch (see
    :func:`calibrate_batchnorm`) so that activations have a trained network's scale.
    """
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; available: {', '.join(list_peers())}")
    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(seed)
        model = PEERS[name](num_keypoints=num_keypoints, input_size=tuple(input_size))
        if calibrate:
            calibrate_batchnorm(model, torch.randn(4, 3, input_size[1], input_size[0]))
    return model.eval()
