"""int8 LiteRT (TFLite) flatbuffers via litert-torch's PT2E quantizer.

The same int8-ready deploy network as the ExecuTorch path (QAT-trained float weights for the
``int8-qat`` scheme) is captured, prepared with litert-torch's ``PT2EQuantizer`` (its own
annotation: int8 per-channel weights, per-tensor activations), calibrated on person crops and
converted with ``fold_quantize=False``; the converted network then goes inside the shared
:class:`~mobile_export.bundle.PoseBundle` and ``litert_torch.convert(..., quant_config=...)``
turns the quantize/dequantize pairs into int8 TFLite kernels (``STATIC`` mode), or keeps int8
weights with float activations quantized at run time (``DYNAMIC`` mode, the dynamic-range
fallback scheme).

I/O: the artifact keeps the uint8 RGB NHWC ``image`` input and float32 ``keypoints``/``scores``
outputs of every StarPose artifact; the int8 tensors live inside (the first QUANTIZE after the
in-graph normalization, DEQUANTIZE before the SimCC decoding), so apps feed it exactly like the
float one. Metadata: the shared document with a ``quantization`` block, embedded in
``Model.metadata`` and in the sidecar.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn

from mobile_export.base import Staging, require
from mobile_export.bundle import AFFINE_INPUT, IMAGE_INPUT, PoseBundle
from mobile_export.metadata import WeightsInfo, dumps, sidecar_path
from mobile_export.tflite import _named  # the fp32 exporter's named-signature wrapper

from .pt2e import QuantizedNetwork, Timings, calibrate, capture, int8_metadata, quantized_stem
from .rewrite import int8_ready
from .schemes import Scheme

__all__ = ["quantize_for_litert", "export_tflite_int8", "filtered_litert_quantizer", "LAYOUT", "SIGNATURE"]

LAYOUT = "NHWC"
SIGNATURE = "serving_default"  # as mobile_export.tflite


def _filtered_quantizer_class() -> type:
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer

    class _Filtered(PT2EQuantizer):
        """litert-torch's PT2E quantizer, with a node filter ANDed into every annotation pass.
        Its own ``set_module_name`` cannot leave a module float (None is refused) and matches
        names on the ``nn_module_stack`` keys, which ``torch.export`` no longer spells as
        ``L__self___...``; the filter (:func:`quantization.schemes.node_filter`) reads the
        module paths instead."""

        def __init__(self, node_filter: Callable[[Any], bool]) -> None:
            super().__init__()
            self.node_filter = node_filter

        def _combined(self, filter_fn: Callable[[Any], bool] | None) -> Callable[[Any], bool]:
            return lambda n: self.node_filter(n) and (filter_fn is None or filter_fn(n))

        def _annotate_all_static_patterns(self, model, quantization_config, filter_fn=None):  # noqa: ANN001
            return super()._annotate_all_static_patterns(model, quantization_config, self._combined(filter_fn))

        def _annotate_all_dynamic_patterns(self, model, quantization_config, filter_fn=None):  # noqa: ANN001
            return super()._annotate_all_dynamic_patterns(model, quantization_config, self._combined(filter_fn))

    return _Filtered


def filtered_litert_quantizer(node_filter: Callable[[Any], bool]) -> Any:
    """A litert-torch ``PT2EQuantizer`` that leaves nodes failing ``node_filter`` float."""
    return _filtered_quantizer_class()(node_filter)


def quantize_for_litert(
    network: nn.Module, scheme: Scheme, batches: Iterable[torch.Tensor], *, calibration_source: str = "",
    timings: Timings | None = None,
) -> tuple[QuantizedNetwork, Any]:
    """Prepare/calibrate/convert ``network`` (float deploy or int8-ready form) with the scheme's
    litert-torch quantizer; returns the converted network and the quantizer (which the
    converter needs to pick the static or dynamic lowering)."""
    require("litert_torch", "tflite")
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    qspec = scheme.tflite
    if qspec is None:
        raise ValueError(f"scheme {scheme.name} has no LiteRT quantizer")
    timings = timings if timings is not None else Timings()
    quantizer = qspec.build()
    with timings.measure("prepare"):
        prepared = prepare_pt2e(capture(int8_ready(network)), quantizer)
    with timings.measure("calibrate"):
        if qspec.dynamic:
            # Activations are quantized at run time, but the weight observers still need one
            # forward pass (without it convert_pt2e falls back to default scales).
            seen = calibrate(prepared, itertools.islice(iter(batches), 1))
        else:
            seen = calibrate(prepared, batches)
    with timings.measure("convert"):
        converted = convert_pt2e(prepared, fold_quantize=False)
        allow_exported_model_train_eval(converted)
    qnet = QuantizedNetwork(converted, network, scheme, qspec, {"source": calibration_source, "crops": seen})
    return qnet, quantizer


@torch.no_grad()
def export_tflite_int8(
    network: nn.Module,
    out_dir: Path,
    *,
    scheme: Scheme,
    batches: Iterable[torch.Tensor],
    weights: WeightsInfo,
    affine: bool = False,
    raw: bool = False,
    calibration_source: str = "",
    extra: dict[str, Any] | None = None,
    timings: Timings | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> list[Path]:
    """Write ``<stem>.tflite`` (int8 per ``scheme``) and its sidecar; returns both paths."""
    require("litert_torch", "tflite")
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig

    from mobile_export.tflite import embed_metadata, uint8_input_as_dequantize

    timings = timings if timings is not None else Timings()
    qnet, quantizer = quantize_for_litert(network, scheme, batches, calibration_source=calibration_source,
                                          timings=timings)
    bundle = PoseBundle(qnet, qnet.spec, layout=LAYOUT, affine=affine, raw=raw).eval()
    names = (IMAGE_INPUT, AFFINE_INPUT)[: 2 if affine else 1]
    kwargs = dict(zip(names, bundle.example_inputs()))
    name = quantized_stem(qnet.variant, None, scheme, affine, raw) + ".tflite"
    progress(f"tflite int8 ({scheme.name}): litert_torch.convert → {name}")
    with timings.measure("lower"):
        edge = litert_torch.signature(SIGNATURE, _named(bundle).eval(), sample_kwargs=kwargs).convert(
            quant_config=QuantConfig(pt2e_quantizer=quantizer))
        data = uint8_input_as_dequantize(bytes(edge.model_content()))
    meta = int8_metadata(
        qnet, weights=weights, scheme=scheme, fmt="tflite", backend="litert", layout=LAYOUT, affine=affine, raw=raw,
        runtime={"name": "litert", "platforms": ["android", "ios", "linux", "macos"], "signature": SIGNATURE},
        quantization={**qnet.qspec.describe(), "calibration": qnet.calibration,
                      "io": "uint8 image in, float32 keypoints/scores out; int8 tensors are internal",
                      **(extra or {})},
    )
    data = embed_metadata(data, dumps(meta))
    with Staging(Path(out_dir)) as stage:
        stage.write_bytes(name, data)
        stage.write_text(sidecar_path(Path(name)).name, dumps(meta))
        return stage.commit()
