"""The bundled person detector: NanoDet-g (person class) in PyTorch, its frozen contract and its
numpy reference pre/post-processing. ``predict`` and ``eval --boxes ours`` use it to find every
person in a frame; ``export`` ships it next to the pose model."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .spec import PERSON_DETECTOR_SPEC, DetectorSpec

_LAZY = {
    "NanoDetPerson": ".nanodet",
    "create_detector": ".nanodet",
    "Detection": ".detector",
    "PersonDetector": ".detector",
    "load_detector": ".detector",
}

if TYPE_CHECKING:
    from .detector import Detection, PersonDetector, load_detector
    from .nanodet import NanoDetPerson, create_detector

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())

__all__ = ["DetectorSpec", "PERSON_DETECTOR_SPEC", *_LAZY]
