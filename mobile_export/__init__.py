"""StarPose Mobile exporters: one module per format, one pure function each.

``FORMATS`` (format name → :class:`Exporter`) drives the CLI; :class:`PoseBundle` is the uint8
crop → keypoints module every format wraps; ``verify`` runs each artifact in its real runtime on
real person crops and returns :class:`ParityReport` values. Heavy dependencies (executorch,
coremltools, litert-torch) are imported only when a format is used.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import ExportOptions, Exporter, MissingExtraError, RuntimeUnavailable

# Loaded on first use: the bundle and the exporters import torch, and a process that only runs a
# TFLite or ONNX artifact (bench workers) must not.
_LAZY = {"PoseBundle": ".bundle", "FORMATS": ".formats", "exporter_for": ".formats"}

if TYPE_CHECKING:
    from .bundle import PoseBundle
    from .formats import FORMATS, exporter_for


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["FORMATS", "Exporter", "ExportOptions", "PoseBundle", "MissingExtraError", "RuntimeUnavailable",
           "exporter_for"]
