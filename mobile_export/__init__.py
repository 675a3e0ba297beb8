"""StarPose Mobile exporters: one module per format, one pure function each.

``FORMATS`` (format name → :class:`Exporter`) drives the CLI; :class:`PoseBundle` is the uint8
crop → keypoints module every format wraps; ``verify`` runs each artifact in its real runtime on
real person crops and returns :class:`ParityReport` values. Heavy dependencies (executorch,
coremltools, litert-torch) are imported only when a format is used.
"""
from __future__ import annotations

from .base import ExportOptions, Exporter, MissingExtraError, RuntimeUnavailable
from .bundle import PoseBundle
from .formats import FORMATS, exporter_for

__all__ = ["FORMATS", "Exporter", "ExportOptions", "PoseBundle", "MissingExtraError", "RuntimeUnavailable",
           "exporter_for"]
