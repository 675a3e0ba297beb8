"""``PersonDetector``: the packaged person detector on uint8 RGB frames (eager PyTorch)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .processing import check_image, letterbox, normalize, postprocess
from .spec import DetectorSpec

__all__ = ["Detection", "PersonDetector", "load_detector"]


@dataclass(frozen=True)
class Detection:
    """A person box ``(x, y, w, h)`` in image pixels and its score."""

    box: np.ndarray
    score: float


class PersonDetector:
    """Letterbox → network → :func:`starpose.detect.processing.postprocess`.

    With ``orient`` (the default) each frame is letterboxed into the spec's input turned to the
    frame's orientation (:meth:`DetectorSpec.oriented`: 160x224 (w x h) for a portrait frame, 224x160 for
    a landscape one), as an app does by exporting the detector at its camera's orientation; off,
    every frame goes into ``spec.input_size`` as it is (what a fixed-size artifact computes)."""

    def __init__(self, model: torch.nn.Module, spec: DetectorSpec | None = None, orient: bool = True) -> None:
        self.model = model.eval()
        self.spec = spec or model.spec
        self.orient = orient

    def spec_for(self, image: np.ndarray) -> DetectorSpec:
        """The input contract this frame is letterboxed into."""
        return self.spec.oriented((image.shape[1], image.shape[0])) if self.orient else self.spec

    @torch.no_grad()
    def raw(self, image: np.ndarray):
        """Letterboxed input, its transform, and the network's raw outputs (numpy)."""
        spec = self.spec_for(check_image(image))
        canvas, lb = letterbox(image, spec)
        logits, box = self.model(torch.from_numpy(normalize(canvas, spec))[None])
        return canvas, lb, logits[0].numpy(), box[0].numpy()

    def __call__(self, image: np.ndarray, score_threshold: float | None = None,
                 max_detections: int | None = None) -> list[Detection]:
        """People in an RGB uint8 image, best first."""
        _, lb, logits, box = self.raw(image)
        boxes, scores = postprocess(logits, box, self.spec_for(image), lb, (image.shape[1], image.shape[0]),
                                    score_threshold, max_detections)
        return [Detection(b, float(s)) for b, s in zip(boxes, scores)]


def load_detector(weights: str = "default", spec: DetectorSpec | None = None, orient: bool = True) -> PersonDetector:
    """The packaged detector (``"default"``), or the same network with a weights file ``PATH``."""
    from .nanodet import create_detector
    from .spec import PERSON_DETECTOR_SPEC
    from .weights import load_detector_weights

    spec = spec or PERSON_DETECTOR_SPEC
    if weights == "default":
        model = create_detector(pretrained=True, spec=spec)
    else:
        model = load_detector_weights(create_detector(pretrained=False, spec=spec), weights)
    return PersonDetector(model.eval(), spec, orient)
