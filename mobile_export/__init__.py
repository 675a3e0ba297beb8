"""StarPose Mobile exporters: one module per format, one pure function each.

``FORMATS`` (format name → :class:`Exporter`) drives the CLI; :class:`PoseBundle` is the uint8
crop → keypoints module every format wraps; ``verify`` runs each artifact in its real runtime on
real person crops and returns :class:`ParityReport` values. Heavy dependencies (executorch,
coremltools, litert-torch) are imported only when a format is used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from starpose._lazy import lazy_attributes

from .base import ExportOptions, Exporter, MissingExtraError, RuntimeUnavailable

# Loaded on first use: the bundle and the exporters import torch, and a process that only runs a
# TFLite or ONNX artifact (bench workers) must not.
_LAZY = {"PoseBundle": ".bundle", "FORMATS": ".formats", "exporter_for": ".formats"}

if TYPE_CHECKING:
    from .bundle import PoseBundle
    from .formats import FORMATS, exporter_for


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = ["FORMATS", "Exporter", "ExportOptions", "PoseBundle", "MissingExtraError", "RuntimeUnavailable",
           "exporter_for"]
