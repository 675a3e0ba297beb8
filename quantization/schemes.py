"""Quantization schemes as data: one row per scheme, naming each backend's configuration.

A :class:`Scheme` says what an artifact's numbers are (``precision``, as written into its
metadata), whether it needs calibration data or training, and, per backend, which quantizer
configuration produces it:

- ExecuTorch / XNNPACK: torchao PT2E with ``XNNPACKQuantizer`` and
  ``get_symmetric_quantization_config``: int8 weights, symmetric per output channel
  ([-127, 127]); int8 activations, affine per tensor ([-128, 127]) — what XNNPACK's QS8
  kernels take.
- LiteRT / TFLite: the same PT2E flow with litert-torch's ``PT2EQuantizer`` (static: the
  converter turns the Q/DQ pairs into int8 TFLite kernels; dynamic range: int8 weights,
  activations quantized on the fly — the fallback where static int8 does not convert).
- Core ML: fp16 compute by default; int8 weights by ``ct.optimize.coreml.linear_quantize_weights``
  (``constexpr_affine_dequantize`` ops, iOS 16), or 4-bit k-means palettization
  (``constexpr_lut_to_dense``). Activations stay fp16: Core ML's activation calibration
  (``linear_quantize_activations``) runs predictions, which only macOS can.

Two modules stay float in every int8 scheme: the SimCC head's per-axis Linear layers
(:data:`FLOAT_MODULES`). They are tiny (a (K x 48) x (48 x 384) product), and their outputs are
the logits whose argmax is the keypoint: int8 logits turn near-maxima into ties one quantization
step wide, which moves the argmax by bins. Keeping them float also keeps every graph output a
float leaf (XNNPACK crashes on a quantized tensor that is both a graph output and an op input).
Two ops stay float by rule (:func:`node_filter`): the linear attention's normalizer (an int8
divisor rounds to 0) and its key-value summary (one small matrix every position reads: its
rounding is a bias on the whole map, not noise at one pixel).
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

__all__ = [
    "FLOAT_MODULES",
    "FLOAT_MODULE_TYPES",
    "QuantizerSpec",
    "CoreMLRecipe",
    "Scheme",
    "SCHEMES",
    "INT8_SCHEMES",
    "get_scheme",
    "with_int8_depthwise",
    "with_float_modules",
    "check_float_modules",
    "XNNPACK_INT8",
    "LITERT_INT8",
    "node_filter",
]

FLOAT_MODULES: tuple[str, ...] = ("head.mlp_head_x", "head.mlp_head_y")
FLOAT_MODULE_TYPES: tuple[str, ...] = ()
_QUANTIZERS = ("xnnpack", "litert")


@dataclass(frozen=True)
class QuantizerSpec:
    """One PT2E quantizer configuration.

    ``library``: ``"xnnpack"`` (ExecuTorch's ``XNNPACKQuantizer``) or ``"litert"``
    (litert-torch's ``PT2EQuantizer``). Weights are int8 symmetric, per output channel when
    ``per_channel``; activations int8 affine per tensor, observed by a histogram during
    calibration (PTQ) or by moving-average fake quantization during training (``qat``);
    ``dynamic`` quantizes activations at run time instead (no calibration).

    Which ops become int8: ``float_modules`` (module paths) and ``float_module_types`` (class
    names) stay float; ``float_depthwise`` keeps depthwise convolutions float.
    """

    library: str
    per_channel: bool = True
    qat: bool = False
    dynamic: bool = False
    float_modules: tuple[str, ...] = FLOAT_MODULES
    float_module_types: tuple[str, ...] = FLOAT_MODULE_TYPES
    float_depthwise: bool = False

    def __post_init__(self) -> None:
        if self.library not in _QUANTIZERS:
            raise ValueError(f"quantizer library must be one of {_QUANTIZERS}, got {self.library!r}")
        if self.qat and self.dynamic:
            raise ValueError("a dynamic-range scheme has nothing to train: qat and dynamic exclude each other")

    def build(self) -> Any:
        """The torchao ``Quantizer`` instance (imports the backend lazily)."""
        if self.library == "xnnpack":
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                XNNPACKQuantizer,
                get_symmetric_quantization_config,
            )

            quantizer = XNNPACKQuantizer().set_global(
                get_symmetric_quantization_config(is_per_channel=self.per_channel, is_qat=self.qat,
                                                  is_dynamic=self.dynamic)
            )
            quantizer.set_filter_function(node_filter(self))
            return quantizer
        from litert_torch.quantize.pt2e_quantizer import get_symmetric_quantization_config

        from .litert import filtered_litert_quantizer

        return filtered_litert_quantizer(node_filter(self)).set_global(
            get_symmetric_quantization_config(is_per_channel=self.per_channel, is_qat=self.qat,
                                              is_dynamic=self.dynamic)
        )

    def describe(self) -> dict[str, Any]:
        """What the artifact metadata records about the quantizer."""
        d = {
            "quantizer": {"xnnpack": "executorch XNNPACKQuantizer", "litert": "litert_torch PT2EQuantizer"}[self.library],
            "weights": "int8 symmetric " + ("per output channel" if self.per_channel else "per tensor"),
            "activations": "int8 affine per tensor, " + ("dynamic (at run time)" if self.dynamic else "static"),
            "float_modules": list(self.float_modules),
        }
        d["float_module_types"] = list(self.float_module_types)
        d["float_depthwise"] = self.float_depthwise
        return d


def node_filter(spec: QuantizerSpec) -> Callable[[Any], bool]:
    """A node filter for ``XNNPACKQuantizer.set_filter_function``: False (leave float) for nodes
    traced from inside one of ``spec.float_modules`` (the ``nn_module_stack`` path) or a module
    whose class is in ``spec.float_module_types``, and for depthwise convolutions when
    ``spec.float_depthwise``."""
    names = tuple(spec.float_modules)
    types = tuple(spec.float_module_types)

    def keep(node: Any) -> bool:
        for path, kind in node.meta.get("nn_module_stack", {}).values():
            path = str(path)
            if any(path == n or path.endswith("." + n) for n in names):
                return False
            kind = _kind_name(kind)
            if any(kind == t or kind.endswith("." + t) for t in types):
                return False
        if spec.float_depthwise and _is_depthwise_conv(node):
            return False
        if _feeds_a_divisor(node):
            return False
        if _is_attention_summary(node):
            return False
        return True

    return keep


def _is_attention_summary(node: Any) -> bool:
    """True for the linear attention's key-value summary, ``kv = v kᵀ · (1/n)``: the one multiply
    traced in a ``*LinearAttention`` module's own forward (its constant ``1/n`` is a float when
    captured and a lifted tensor constant by the time the quantizer annotates). ``kv`` is one small
    (dv x dq) matrix per head that every position of the map reads, so its int8 rounding is not
    noise at one pixel but the same bias at all of them (with trained weights, leaving it float in
    stage 0 moved the parity crops' mean keypoint deviation from 4.5 to 2.7 px in PyTorch's
    reference int8, docs/QUANTIZATION.md). It costs nothing measurable: a few hundred values per
    head."""
    import torch

    if node.op != "call_function":
        return False
    if node.target == torch.ops.aten.add.Tensor:
        # the one-head form sums two half-length products first (starpose.models.deploy): that
        # sum is the same summary, before its 1/n
        users = list(node.users)
        return len(users) == 1 and _is_attention_summary(users[0])
    if node.target != torch.ops.aten.mul.Tensor:
        return False
    stack = list(node.meta.get("nn_module_stack", {}).values())
    return bool(stack) and _kind_name(stack[-1][1]).endswith("LinearAttention")


def _kind_name(kind: Any) -> str:
    """A module class as ``nn_module_stack`` holds it (a qualified name or the class itself)."""
    return kind if isinstance(kind, str) else f"{kind.__module__}.{kind.__qualname__}"


def _feeds_a_divisor(node: Any, depth: int = 2) -> bool:
    """True for a divisor (the linear attention's normalizer) and the ops just before it: an int8
    divisor rounds its small positive values to 0 and the division to inf/NaN (seen in QAT from
    trained weights)."""
    import torch

    for user in getattr(node, "users", {}):
        if user.op != "call_function":
            continue
        if user.target == torch.ops.aten.div.Tensor and len(user.args) > 1 and user.args[1] is node:
            return True
        if depth > 1 and user.target in (torch.ops.aten.add.Tensor, torch.ops.aten.bmm.default) \
                and _feeds_a_divisor(user, depth - 1):
            return True
    return False


def _is_depthwise_conv(node: Any) -> bool:
    import torch

    if node.op != "call_function" or node.target not in (torch.ops.aten.conv2d.default,
                                                          torch.ops.aten.convolution.default):
        return False
    groups_index = 6 if node.target == torch.ops.aten.conv2d.default else 8
    groups = node.args[groups_index] if len(node.args) > groups_index else node.kwargs.get("groups", 1)
    return int(groups) > 1


@dataclass(frozen=True)
class CoreMLRecipe:
    """Core ML: ``compute_precision`` of the ML Program, and weight compression applied after
    conversion (None, ``"int8"`` linear symmetric per channel, ``"palettize4"`` 4-bit k-means
    look-up tables per tensor)."""

    compute_precision: str = "fp16"
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.compute_precision not in ("fp32", "fp16"):
            raise ValueError(f"Core ML compute precision must be fp32 or fp16, got {self.compute_precision!r}")
        if self.weights not in (None, "int8", "palettize4"):
            raise ValueError(f"Core ML weight compression must be None, 'int8' or 'palettize4', got {self.weights!r}")

    def describe(self) -> dict[str, Any]:
        return {"compute_precision": self.compute_precision,
                "weights": {None: "float", "int8": "int8 linear symmetric per output channel",
                            "palettize4": "4-bit k-means palettization per tensor"}[self.weights],
                "activations": self.compute_precision}


@dataclass(frozen=True)
class Scheme:
    """One row of :data:`SCHEMES`. A backend whose entry is None is exported as float at
    ``precision`` by ``mobile_export`` (fp32/fp16), or not offered at all (``offers``)."""

    name: str
    precision: str  # what the artifact metadata says: fp32 | fp16 | int8
    summary: str
    calibrate: bool = False
    train: bool = False
    executorch: QuantizerSpec | None = None
    tflite: QuantizerSpec | None = None
    coreml: CoreMLRecipe | None = None
    offers: tuple[str, ...] = ("executorch", "tflite", "coreml")
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        """The ``quantization`` block of an artifact's metadata for backend ``format``."""
        return {"scheme": self.name, "calibrated": self.calibrate, "quantization_aware_training": self.train}

    def backend_config(self, fmt: str) -> dict[str, Any] | None:
        cfg = {"executorch": self.executorch, "tflite": self.tflite, "coreml": self.coreml}[fmt]
        return None if cfg is None else cfg.describe()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["offers"] = list(self.offers)
        d["notes"] = list(self.notes)
        return d


# What XNNPACK runs in int8 (measured with ExecuTorch 1.5.1 on x86, 1 thread; docs/QUANTIZATION.md):
# 1x1 and dense convolutions and additions/multiplications gain from int8; depthwise
# convolutions are slower in XNNPACK's QC8 kernels than in fp32 (3x7: 2.1 vs 1.3 ms on a
# 128x64x48 tensor), and ChannelNorm's squared deviations and channel means lose most of their
# precision as per-tensor int8 (and add quantize/dequantize pairs that slow lowering down).
XNNPACK_INT8 = QuantizerSpec("xnnpack", float_module_types=("ChannelNorm",), float_depthwise=True)
# LiteRT's CPU path is XNNPACK as well: the same op selection.
LITERT_INT8 = dataclasses.replace(XNNPACK_INT8, library="litert")

SCHEMES: dict[str, Scheme] = {
    "fp32": Scheme("fp32", "fp32", "float32 everywhere (the reference)", coreml=CoreMLRecipe("fp32")),
    "fp16": Scheme("fp16", "fp16", "float16 compute (XNNPACK fp16 graph, Core ML fp16, TFLite fp16 weights)",
                   coreml=CoreMLRecipe("fp16")),
    "int8-ptq": Scheme(
        "int8-ptq", "int8", "post-training static int8: calibrate activation ranges on person crops",
        calibrate=True,
        executorch=XNNPACK_INT8,
        tflite=LITERT_INT8,
        coreml=CoreMLRecipe("fp16", weights="int8"),
    ),
    "int8-qat": Scheme(
        "int8-qat", "int8", "quantization-aware training of the deploy graph (prepare_qat_pt2e → train → convert)",
        calibrate=True, train=True,
        executorch=dataclasses.replace(XNNPACK_INT8, qat=True),
        tflite=LITERT_INT8,  # the QAT'd float weights, activation ranges calibrated for LiteRT's graph
        coreml=CoreMLRecipe("fp16", weights="int8"),
        notes=("LiteRT and Core ML take the QAT-trained float weights; LiteRT recalibrates activation ranges "
               "for its own quantizer's annotation",),
    ),
    "int8-dynamic": Scheme(
        "int8-dynamic", "int8", "dynamic range: int8 weights, activations quantized at run time (TFLite fallback)",
        tflite=dataclasses.replace(LITERT_INT8, dynamic=True), offers=("tflite",),
    ),
    "w4-palettized": Scheme(
        "w4-palettized", "fp16", "Core ML 4-bit palettized weights (k-means look-up tables), fp16 compute",
        coreml=CoreMLRecipe("fp16", weights="palettize4"), offers=("coreml",),
    ),
}

INT8_SCHEMES: tuple[str, ...] = tuple(n for n, s in SCHEMES.items() if s.precision == "int8")


def with_int8_depthwise(scheme: Scheme) -> Scheme:
    """``scheme`` with its depthwise convolutions quantized too (both PT2E backends): smaller
    artifacts, and faster where int8 depthwise kernels beat fp32 ones (measured here for the
    wide CP variants, starpose_m/l; slower for t/s on x86 — docs/QUANTIZATION.md)."""
    if scheme.executorch is None and scheme.tflite is None:
        raise ValueError(f"scheme {scheme.name} has no PT2E int8 backend whose depthwise convolutions could be quantized")
    swap = {f: dataclasses.replace(getattr(scheme, f), float_depthwise=False)
            for f in ("executorch", "tflite") if getattr(scheme, f) is not None}
    return dataclasses.replace(scheme, **swap)


def with_float_modules(scheme: Scheme, modules: Iterable[str]) -> Scheme:
    """``scheme`` with more module paths left float in both PT2E backends (``export --int8-float``):
    accuracy for size. E.g. ``backbone.layers.3``, StarPose's last stage (8% of StarPose-t's
    multiply-accumulates, 37% of its weights): with trained weights it brings ``verify``'s exact-bin
    agreement over its limit at 1.03x the latency and 1.57x the size (docs/QUANTIZATION.md)."""
    modules = tuple(dict.fromkeys(str(m).strip() for m in modules))
    if not modules or not all(modules):
        raise ValueError("no module path to leave float (e.g. backbone.layers.3)")
    if scheme.executorch is None and scheme.tflite is None:
        raise ValueError(f"scheme {scheme.name} has no PT2E int8 backend to leave modules float in")
    swap = {f: dataclasses.replace(getattr(scheme, f), float_modules=tuple(dict.fromkeys(
                getattr(scheme, f).float_modules + modules)))
            for f in ("executorch", "tflite") if getattr(scheme, f) is not None}
    return dataclasses.replace(scheme, **swap)


def check_float_modules(network: Any, scheme: Scheme) -> None:
    """Raise ValueError naming each float module path of ``scheme`` beyond :data:`FLOAT_MODULES`
    that ``network``'s int8-ready deploy form does not have (a typo would otherwise quantize
    everything silently)."""
    from .rewrite import int8_ready

    wanted = {m for f in ("executorch", "tflite") if getattr(scheme, f) is not None
              for m in getattr(scheme, f).float_modules if m not in FLOAT_MODULES}
    if not wanted:
        return
    known = {n for n, _ in int8_ready(network).named_modules() if n}
    unknown = sorted(m for m in wanted if m not in known)
    if unknown:
        examples = sorted(n for n in known if n.count(".") <= 2)[:10]
        raise ValueError(f"no module {', '.join(repr(u) for u in unknown)} in {type(network).__name__} "
                         f"to leave float; module paths look like: {', '.join(examples)}")


def get_scheme(name: str) -> Scheme:
    """The scheme called ``name``; ``"ptq"``/``"qat"``/``"dynamic"`` are short for the int8 ones."""
    key = name if name in SCHEMES else f"int8-{name}"
    if key not in SCHEMES:
        raise KeyError(f"unknown quantization scheme {name!r}; known: {', '.join(SCHEMES)}")
    return SCHEMES[key]
