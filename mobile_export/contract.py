"""The I/O contract every artifact shares: input names, layouts, output names. Plain values,
no torch, so that a runtime-only process (``starpose-mobile bench``'s TFLite and ONNX Runtime
workers) can read metadata without importing the framework the artifact was exported from."""
from __future__ import annotations

from typing import Literal

__all__ = ["Layout", "LAYOUTS", "IMAGE_INPUT", "AFFINE_INPUT", "output_names"]

Layout = Literal["NHWC", "NCHW"]
LAYOUTS: tuple[str, ...] = ("NHWC", "NCHW")
IMAGE_INPUT = "image"
AFFINE_INPUT = "crop_to_image"


def output_names(raw: bool) -> tuple[str, ...]:
    """Names of the bundle's outputs, in the order ``forward`` returns them."""
    return ("keypoints", "scores", "simcc_x", "simcc_y") if raw else ("keypoints", "scores")
