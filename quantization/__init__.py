"""Quantization for StarPose Mobile: schemes as data, calibration on real person crops, PT2E
int8 (post-training and quantization-aware training) for ExecuTorch/XNNPACK and LiteRT, and
Core ML weight compression. Heavy dependencies (executorch, litert-torch, coremltools) are
imported only when a backend is used.

See ``docs/QUANTIZATION.md``.
"""
from __future__ import annotations

from .schemes import (INT8_SCHEMES, SCHEMES, CoreMLRecipe, QuantizerSpec, Scheme, get_scheme, with_float_modules,
                      with_int8_depthwise)

__all__ = ["SCHEMES", "INT8_SCHEMES", "Scheme", "QuantizerSpec", "CoreMLRecipe", "get_scheme", "with_int8_depthwise",
           "with_float_modules"]
