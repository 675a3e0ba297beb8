"""The bundled person detector as phone artifacts: export, metadata, verify, bench.

``export`` writes the detector next to the pose model in the formats that hold it (ExecuTorch
XNNPACK ``.pte``, LiteRT ``.tflite``, Core ML ``.mlpackage``). Each takes the **letterboxed uint8
RGB frame** (the detector's input size, see :func:`starpose.detect.processing.letterbox`) and
returns **decoded boxes** ``(1, N, 4)`` (x1, y1, x2, y2 in input pixels, clipped) and **person
scores** ``(1, N)`` for all ``N`` anchor points: normalization, the network, the sigmoid, the
box-side softmax expectation, the anchor offsets and the clipping are in the graph, exactly as
:func:`starpose.detect.processing.decode` computes them.

Non-maximum suppression is *not* in the graphs: it needs a sort or top-k and data-dependent
indexing, which neither XNNPACK nor LiteRT's XNNPACK delegate runs, so putting it inside would
split the graph and send part of every frame to the slow reference kernels. Every op but the
uint8 → float cast of the input is in the delegate; the app cores run
:func:`starpose.detect.processing.nms` (ported line by line to Kotlin and Swift) on the boxes
scoring above the threshold, which costs microseconds.

Metadata (``kind: person_detector``) follows the pose artifacts' layout where the two agree (an
``input`` block, ``affine_input.present: false``, named ``outputs`` with shapes, ``format``,
``precision``, ``backend``), so the format runners of :mod:`mobile_export` open detector
artifacts unchanged; ``detector_spec`` holds the :class:`~starpose.detect.spec.DetectorSpec`.
It goes into each format's native slot and a ``<artifact>.json`` sidecar, and the artifacts are
listed in the directory's ``manifest.json`` like the pose artifacts.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from starpose._quiet import captured, outside
from starpose.detect.spec import PERSON_DETECTOR_SPEC, DetectorSpec

from .base import ArtifactLoadError, ObservedIO, RuntimeUnavailable, Staging, TensorInfo, require
from .contract import IMAGE_INPUT
from .metadata import MetadataError, sidecar_path

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = [
    "KIND",
    "DETECTOR_FORMATS",
    "DetectorBundle",
    "build_detector_metadata",
    "parse_detector_metadata",
    "is_detector_artifact",
    "detector_artifact_name",
    "export_detector",
    "read_detector_embedded_metadata",
    "delegation_report",
    "DetectorParity",
    "detector_parity",
    "verify_detector_artifact",
    "open_detector_call",
]

KIND = "person_detector"
FORMAT_VERSION = 1
DETECTOR_FORMATS: tuple[str, ...] = ("executorch", "tflite", "coreml")
OUTPUTS = ("boxes", "scores")
PRECISIONS = ("fp32", "fp16")
_LAYOUT = {"executorch": "NHWC", "tflite": "NHWC", "coreml": "NCHW"}
_SUFFIX = {"executorch": ".pte", "tflite": ".tflite", "coreml": ".mlpackage"}
_BACKEND = {"executorch": "xnnpack", "tflite": "litert", "coreml": "mlprogram"}
_TFLITE_METADATA = "starpose_metadata"


def detector_artifact_name(fmt: str, precision: str) -> str:
    """``person_detector_xnnpack_fp32.pte``, ``person_detector_fp32.tflite``, ``person_detector_fp32.mlpackage``."""
    tag = "_xnnpack" if fmt == "executorch" else ""
    return f"{KIND}{tag}_{precision}{_SUFFIX[fmt]}"


def _bundle_class():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from starpose.detect.processing import anchor_points

    class DetectorBundle(nn.Module):
        """Detector network + in-graph pre/post: ``image`` (1, H, W, 3) uint8 for ``"NHWC"`` or
        (1, 3, H, W) float 0..255 for ``"NCHW"`` → ``boxes`` (1, N, 4), ``scores`` (1, N), float32."""

        def __init__(self, network: nn.Module, spec: DetectorSpec, layout: str = "NHWC") -> None:
            super().__init__()
            if layout not in ("NHWC", "NCHW"):
                raise ValueError(f"layout must be NHWC or NCHW, got {layout!r}")
            self.network, self.spec, self.layout = network, spec, layout
            centres, strides = anchor_points(spec)
            w, h = spec.input_size
            self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("centres", torch.tensor(centres, dtype=torch.float32)[None])  # (1, N, 2)
            self.register_buffer("strides", torch.tensor(strides, dtype=torch.float32).view(1, -1, 1))
            self.register_buffer("project", torch.arange(spec.num_bins, dtype=torch.float32).view(1, -1))
            self.register_buffer("lower", torch.zeros(1, 1, 4))
            self.register_buffer("upper", torch.tensor([w, h, w, h], dtype=torch.float32).view(1, 1, 4))

        output_names = OUTPUTS

        def example_inputs(self, dtype=torch.uint8) -> tuple[torch.Tensor]:
            w, h = self.spec.input_size
            shape = (1, h, w, 3) if self.layout == "NHWC" else (1, 3, h, w)
            return (torch.full(shape, 128, dtype=dtype),)

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = image.to(self.mean.dtype)
            if self.layout == "NHWC":
                x = x.permute(0, 3, 1, 2)
            logits, box = self.network((x - self.mean) / self.std)
            scores = torch.sigmoid(logits)
            # softmax expectation over 0..reg_max as a 1-row linear layer: a GEMM the delegates take
            n = box.shape[1]
            dist = F.linear(torch.softmax(box, dim=-1), self.project).reshape(1, n, 4) * self.strides
            boxes = torch.cat([self.centres - dist[..., :2], self.centres + dist[..., 2:]], dim=-1)
            boxes = torch.minimum(torch.maximum(boxes, self.lower), self.upper)
            return boxes.to(torch.float32), scores.to(torch.float32)

    return DetectorBundle


def DetectorBundle(network: nn.Module, spec: DetectorSpec, layout: str = "NHWC") -> nn.Module:  # noqa: N802
    """The deployable detector module (see the class docstring); torch is imported on call."""
    return _bundle_class()(network, spec, layout)


# --------------------------------------------------------------------------- metadata


def build_detector_metadata(spec: DetectorSpec, *, fmt: str, precision: str, weights_sha256: str,
                            runtime: dict[str, Any] | None = None) -> dict[str, Any]:
    from starpose import __version__
    from starpose.detect.weights import detector_weights_metadata

    w, h = spec.input_size
    n = spec.num_anchors
    source = detector_weights_metadata()
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "model": {"name": spec.name, "weights_sha256": weights_sha256, "upstream": source.get("upstream", ""),
                  "package_version": __version__},
        "detector_spec": spec.to_dict(),
        "input": {"name": IMAGE_INPUT, "dtype": "uint8", "color": "RGB",
                  "layout": _LAYOUT[fmt], "width": w, "height": h, "normalization": "in_graph",
                  "type": "image" if fmt == "coreml" else "tensor", "letterbox": "top-left, pad_value"},
        "affine_input": {"present": False},
        "outputs": {"boxes": {"shape": [1, n, 4], "units": "input pixels", "order": "x1, y1, x2, y2"},
                    "scores": {"shape": [1, n]}},
        "postprocess": {"nms": "in app", "score_threshold": spec.score_threshold,
                        "iou_threshold": spec.iou_threshold, "max_detections": spec.max_detections},
        "format": fmt,
        "precision": precision,
        "backend": _BACKEND[fmt],
    }
    if runtime:
        meta["runtime"] = runtime
    return parse_detector_metadata(json.dumps(meta), f"<new {fmt} detector metadata>")


def parse_detector_metadata(text: str, where: str) -> dict[str, Any]:
    """Parse and check a detector metadata document; a fault raises MetadataError naming ``where``
    and the JSON path."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise MetadataError(f"{where}: not valid JSON ({e})") from e

    def fail(path: str, problem: str) -> None:
        raise MetadataError(f"{where}: {path}: {problem}")

    if not isinstance(doc, dict):
        fail("(top level)", "expected a JSON object")
    if doc.get("kind") != KIND:
        fail("kind", f"{doc.get('kind')!r} is not {KIND!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        fail("format_version", f"{doc.get('format_version')!r} is not supported (this reader knows {FORMAT_VERSION})")
    try:
        spec = DetectorSpec.from_dict(doc["detector_spec"])
    except KeyError:
        fail("detector_spec", "missing")
    except (TypeError, ValueError) as e:
        fail("detector_spec", str(e))
    inp = doc.get("input")
    if not isinstance(inp, dict):
        fail("input", "missing")
    for key, want in (("width", spec.input_size[0]), ("height", spec.input_size[1])):
        if inp.get(key) != want:
            fail(f"input.{key}", f"{inp.get(key)!r} does not match detector_spec.input_size {list(spec.input_size)}")
    if inp.get("layout") not in ("NHWC", "NCHW"):
        fail("input.layout", f"{inp.get('layout')!r} is not NHWC or NCHW")
    if inp.get("dtype") not in ("uint8", "float32"):
        fail("input.dtype", f"{inp.get('dtype')!r} is not uint8 or float32")
    outputs = doc.get("outputs")
    if not isinstance(outputs, dict) or set(outputs) != set(OUTPUTS):
        fail("outputs", f"expected exactly {list(OUTPUTS)}, found {sorted(outputs) if isinstance(outputs, dict) else outputs!r}")
    n = spec.num_anchors
    for name, shape in (("boxes", [1, n, 4]), ("scores", [1, n])):
        got = outputs[name].get("shape") if isinstance(outputs[name], dict) else None
        if got != shape:
            fail(f"outputs.{name}.shape", f"{got} does not match the spec, which implies {shape} ({n} anchors)")
    if doc.get("format") not in DETECTOR_FORMATS:
        fail("format", f"{doc.get('format')!r} is not one of {list(DETECTOR_FORMATS)}")
    if doc.get("precision") not in PRECISIONS:
        fail("precision", f"{doc.get('precision')!r} is not one of {list(PRECISIONS)}")
    return doc


def _read_sidecar(path: Path) -> dict[str, Any]:
    from .metadata import read_metadata_text

    side = sidecar_path(path)
    return parse_detector_metadata(read_metadata_text(side), str(side))


def is_detector_artifact(path: Path) -> bool:
    """A detector artifact: named ``person_detector*`` or described by a detector sidecar."""
    path = Path(path)
    if path.name.startswith(KIND):
        return True
    side = sidecar_path(path)
    if not side.is_file():
        return False
    try:
        return json.loads(side.read_text(encoding="utf-8")).get("kind") == KIND
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


def read_detector_embedded_metadata(path: Path, fmt: str) -> dict[str, Any] | None:
    """The metadata inside the artifact (ExecuTorch ``metadata`` method, TFLite
    ``Model.metadata``, Core ML ``user_defined_metadata``), checked; None when it has none."""
    path = Path(path)
    if fmt == "executorch":
        from .executorch import METADATA_METHOD, embedded_metadata_text

        text = embedded_metadata_text(path)
        return None if text is None else parse_detector_metadata(text, f"{path} (embedded '{METADATA_METHOD}' method)")
    if fmt == "tflite":
        text = _tflite_metadata_text(path)
        return None if text is None else parse_detector_metadata(text, f"{path} (Model.metadata)")
    if fmt == "coreml":
        from .coreml import METADATA_KEY, _load_spec

        text = dict(_load_spec(path).description.metadata.userDefined).get(METADATA_KEY)
        return None if text is None else parse_detector_metadata(text, f"{path} (user_defined_metadata)")
    raise ValueError(f"{path}: no detector artifacts in the {fmt} format")


def _tflite_metadata_text(path: Path) -> str | None:
    from ai_edge_litert import schema_py_generated as schema

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ArtifactLoadError(f"{path}: cannot read ({e})") from e
    try:
        if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
            raise ValueError("missing the TFL3 file identifier")
        model = schema.Model.GetRootAs(data, 0)
        n = model.MetadataLength()
        if n * 4 > len(data):
            raise ValueError(f"the metadata table claims {n} entries in a {len(data)}-byte file")
        for i in range(n):
            entry = model.Metadata(i)
            name = entry.Name()
            if (name.decode() if isinstance(name, bytes) else str(name)) == _TFLITE_METADATA:
                return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode("utf-8")
    except Exception as e:  # noqa: BLE001 - the generated reader raises many types on damaged files
        raise ArtifactLoadError(f"{path}: not a readable TFLite flatbuffer ({type(e).__name__}: {e})") from e
    return None


# --------------------------------------------------------------------------- export


def export_detector(out_dir: Path, formats: tuple[str, ...] = DETECTOR_FORMATS, *, precision: str = "fp32",
                    spec: DetectorSpec = PERSON_DETECTOR_SPEC,
                    progress: Callable[[str], None] = lambda message: None) -> list[Path]:
    """Export the packaged detector in ``formats`` into ``out_dir`` and list the artifacts in its
    ``manifest.json``; returns the paths written (artifacts, then sidecars)."""
    import torch

    from starpose.detect.nanodet import create_detector
    from starpose.detect.weights import DETECTOR_WEIGHTS
    from starpose.models.weights import file_sha256

    from .manifest import update_manifest

    progress = outside(progress)  # our own lines reach the terminal from the captured conversions
    unknown = [f for f in formats if f not in DETECTOR_FORMATS]
    if unknown:
        raise ValueError(f"the detector exports to {', '.join(DETECTOR_FORMATS)}, not {', '.join(unknown)}")
    if precision not in PRECISIONS:
        raise ValueError(f"the detector exports at {', '.join(PRECISIONS)}, not {precision}")
    network = create_detector(pretrained=True, spec=spec).eval()
    sha = file_sha256(DETECTOR_WEIGHTS)
    written: list[Path] = []
    out_dir = Path(out_dir)
    for fmt in formats:
        name = detector_artifact_name(fmt, precision)
        progress(f"detector/{fmt}: → {name}")
        start = time.perf_counter()
        meta = build_detector_metadata(spec, fmt=fmt, precision=precision, weights_sha256=sha,
                                       runtime=_RUNTIME_NOTES[fmt])
        with Staging(out_dir) as stage, torch.no_grad(), captured(f"the detector's {fmt} exporter"):
            _EXPORTERS[fmt](network, spec, precision, meta, stage.path(name))
            stage.write_text(sidecar_path(Path(name)).name, json.dumps(meta, indent=2) + "\n")
            paths = stage.commit()
        seconds = round(time.perf_counter() - start, 2)
        update_manifest(out_dir, {name: {"role": "model", "model_kind": KIND, "format": fmt, "precision": precision,
                                         "backend": meta["backend"], "metadata": sidecar_path(Path(name)).name,
                                         "export_seconds": seconds},
                                  sidecar_path(Path(name)).name: {"role": "metadata"}})
        written += paths
    return written


_RUNTIME_NOTES = {
    "executorch": {"name": "executorch", "delegate": "XnnpackBackend", "platforms": ["android", "ios", "linux", "macos"]},
    "tflite": {"name": "litert", "platforms": ["android", "ios", "linux", "macos"], "signature": "serving_default"},
    "coreml": {"name": "coreml", "platforms": ["ios", "macos"], "minimum_deployment_target": "iOS16"},
}


def _export_executorch(network, spec: DetectorSpec, precision: str, meta: dict[str, Any], target: Path) -> None:
    import copy

    import torch

    require("executorch.exir", "executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from .executorch import METADATA_METHOD, xnnpack_edge_config

    bundle = DetectorBundle(network, spec, "NHWC").eval()
    if precision == "fp16":
        bundle = copy.deepcopy(bundle).half()
    ep = torch.export.export(bundle, bundle.example_inputs(), strict=False)
    # the pose .pte's edge settings: the uint8 frame's cast as the cheap aten._to_copy
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()], compile_config=xnnpack_edge_config(),
                                       constant_methods={METADATA_METHOD: json.dumps(meta)})
    target.write_bytes(edge.to_executorch().buffer)


def _export_tflite(network, spec: DetectorSpec, precision: str, meta: dict[str, Any], target: Path) -> None:
    import torch
    import torch.nn as nn

    require("litert_torch", "tflite")
    import litert_torch

    from .tflite import _fp16_weights, embed_metadata, uint8_input_as_dequantize

    bundle = DetectorBundle(network, spec, "NHWC").eval()

    class Named(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bundle = bundle

        def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
            return dict(zip(OUTPUTS, self.bundle(image)))

    (example,) = bundle.example_inputs()
    edge = litert_torch.signature("serving_default", Named().eval(), sample_kwargs={IMAGE_INPUT: example}).convert()
    data = bytes(edge.model_content())
    if precision == "fp16":
        data = _fp16_weights(data)
    target.write_bytes(embed_metadata(uint8_input_as_dequantize(data), json.dumps(meta)))


def _export_coreml(network, spec: DetectorSpec, precision: str, meta: dict[str, Any], target: Path) -> None:
    import torch

    require("coremltools", "coreml")
    import coremltools as ct

    from .coreml import AUTHOR, DEPLOYMENT_TARGET, METADATA_KEY

    bundle = DetectorBundle(network, spec, "NCHW").eval()
    w, h = spec.input_size
    (example,) = bundle.example_inputs(torch.float32)
    ep = torch.export.export(bundle, (example,), strict=False).run_decompositions({})
    mlmodel = ct.convert(
        ep, inputs=[ct.ImageType(name=IMAGE_INPUT, shape=(1, 3, h, w), scale=1.0, bias=[0.0, 0.0, 0.0],
                                 color_layout=ct.colorlayout.RGB)],
        outputs=[ct.TensorType(name=n, dtype=np.float32) for n in OUTPUTS], convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET))
    n = spec.num_anchors
    mlmodel.author = AUTHOR
    mlmodel.license = "Apache-2.0 (NanoDet weights; see starpose/assets/detector/LICENSE)"
    mlmodel.short_description = (f"Person detector (NanoDet-g, person class): a letterboxed {w}x{h} RGB frame → "
                                 f"{n} decoded boxes and person scores; NMS in the app")
    mlmodel.input_description[IMAGE_INPUT] = f"frame letterboxed to {w}x{h} (top-left, zero padding), RGB"
    mlmodel.output_description["boxes"] = f"(1, {n}, 4) x1, y1, x2, y2 in input pixels"
    mlmodel.output_description["scores"] = f"(1, {n}) person score (sigmoid)"
    mlmodel.user_defined_metadata[METADATA_KEY] = json.dumps(meta)
    mlmodel.save(str(target))


_EXPORTERS = {"executorch": _export_executorch, "tflite": _export_tflite, "coreml": _export_coreml}


# --------------------------------------------------------------------------- delegation


def delegation_report(path: Path, fmt: str) -> dict[str, Any]:
    """Which ops run outside the CPU delegate. ExecuTorch: the program's non-delegate
    instructions; LiteRT: the operators the XNNPACK delegate leaves to the builtin kernels, read
    from the interpreter's execution plan after the delegate is applied."""
    path = Path(path)
    if fmt == "executorch":
        from .executorch import _parse_checked

        pte = _parse_checked(path)
        outside, delegates = [], 0
        for plan in pte.program.execution_plan:
            delegates += len(plan.delegates)
            for chain in plan.chains:
                for ins in chain.instructions:
                    args = ins.instr_args
                    if type(args).__name__ == "KernelCall":
                        outside.append(plan.operators[args.op_index].name)
        return {"delegate_calls": delegates, "outside": outside}
    if fmt == "tflite":
        from .tflite import _interpreter

        it = _interpreter(path)
        return _tflite_plan(it._get_ops_details(), [int(d["index"]) for d in it.get_output_details()])  # noqa: SLF001
    return {"delegate_calls": None, "outside": [], "note": "Core ML schedules every op itself"}


def _tflite_plan(ops: list[dict[str, Any]], graph_outputs: list[int]) -> dict[str, Any]:
    """The ops LiteRT runs after delegation. The interpreter lists the original operators and the
    DELEGATE nodes that replaced some of them; walking back from the graph outputs, a tensor a
    DELEGATE node produces comes from it, any other from its original operator, which therefore
    still runs on the builtin kernels."""
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    from_delegate = {int(t): o for o in delegates for t in o["outputs"]}
    producer = {int(t): o for o in ops if o["op_name"] != "DELEGATE" for t in o["outputs"]}
    seen: set[int] = set()
    outside: list[tuple[int, str]] = []
    frontier = list(graph_outputs)
    while frontier:
        t = frontier.pop()
        node = from_delegate.get(t) or producer.get(t)
        if node is None or node["index"] in seen:
            continue
        seen.add(node["index"])
        if node["op_name"] != "DELEGATE":
            outside.append((node["index"], node["op_name"]))
        frontier += [int(i) for i in node["inputs"] if int(i) >= 0]
    return {"delegate_calls": sum(1 for o in delegates if o["index"] in seen),
            "outside": [name for _, name in sorted(outside)]}


# --------------------------------------------------------------------------- parity


@dataclass
class DetectorParity:
    """Artifact vs the eager bundle on real letterboxed frames."""

    frames: int
    max_score_diff: float
    max_box_diff_px: float  # over anchors whose reference score is >= 0.05
    detections_ref: int
    detections_art: int
    min_matched_iou: float  # of the artifact's detections (after NMS) against the reference's
    precision: str
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        t = self.thresholds
        out = []
        if self.max_score_diff > t["score"]:
            out.append(f"score diff {self.max_score_diff:.2e} > {t['score']}")
        if self.max_box_diff_px > t["box_px"]:
            out.append(f"box diff {self.max_box_diff_px:.3f} px > {t['box_px']}")
        if self.detections_ref != self.detections_art:
            out.append(f"{self.detections_art} detections after NMS, the reference has {self.detections_ref}")
        if self.min_matched_iou < t["iou"]:
            out.append(f"a detection matches the reference's with IoU {self.min_matched_iou:.3f} < {t['iou']}")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def line(self) -> str:
        return (f"{self.frames} frames: score max|diff| {self.max_score_diff:.2e}, box max|diff| "
                f"{self.max_box_diff_px:.3f} px, detections {self.detections_art}/{self.detections_ref}, "
                f"min IoU {self.min_matched_iou:.4f}")


THRESHOLDS = {"fp32": {"score": 1e-3, "box_px": 0.5, "iou": 0.98},
              "fp16": {"score": 3e-2, "box_px": 3.0, "iou": 0.9}}


def parity_frames(limit: int = 6) -> list[np.ndarray]:
    """Real photos to check on: the COCO fixture beside the repository when present, and the
    package's sample photos."""
    from starpose.data.topdown import read_image_rgb

    from .parity import default_coco_json

    paths = []
    fixture = default_coco_json()
    if fixture is not None:
        paths += sorted(p for p in Path(fixture).parent.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    from starpose.sample_data import SAMPLES_DIR

    paths += sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    return [read_image_rgb(p) for p in paths[:limit]]


def detector_parity(call: Callable[[np.ndarray], dict[str, np.ndarray]], meta: dict[str, Any],
                    frames: list[np.ndarray]) -> DetectorParity:
    """Run ``call`` (letterboxed uint8 HWC frame → outputs) and the eager bundle on ``frames``."""
    import torch

    from starpose.detect.nanodet import create_detector
    from starpose.detect.processing import letterbox, nms

    spec = DetectorSpec.from_dict(meta["detector_spec"])
    bundle = DetectorBundle(create_detector(pretrained=True, spec=spec), spec, "NHWC").eval()
    max_s = max_b = 0.0
    n_ref = n_art = 0
    min_iou = 1.0
    for frame in frames:
        canvas, _ = letterbox(frame, spec)
        with torch.no_grad():
            rb, rs = (t[0].numpy().astype(np.float64) for t in bundle(torch.from_numpy(canvas[None])))
        out = call(canvas)
        ab, as_ = np.asarray(out["boxes"], np.float64)[0], np.asarray(out["scores"], np.float64)[0]
        if ab.shape != rb.shape or as_.shape != rs.shape:
            raise ValueError(f"outputs {ab.shape}, {as_.shape} differ from the reference's {rb.shape}, {rs.shape}")
        max_s = max(max_s, float(np.abs(as_ - rs).max()))
        live = rs >= 0.05
        if live.any():
            max_b = max(max_b, float(np.abs(ab[live] - rb[live]).max()))
        kr = nms(rb, rs, spec.score_threshold, spec.iou_threshold, spec.max_detections)
        ka = nms(ab, as_, spec.score_threshold, spec.iou_threshold, spec.max_detections)
        n_ref, n_art = n_ref + len(kr), n_art + len(ka)
        from starpose.detect.processing import box_iou

        for i in ka:
            if len(kr):
                min_iou = min(min_iou, float(box_iou(ab[i], rb[kr]).max()))
            else:
                min_iou = 0.0
    return DetectorParity(len(frames), max_s, max_b, n_ref, n_art, min_iou, meta["precision"],
                          THRESHOLDS[meta["precision"]])


def _format_of(path: Path) -> str:
    for fmt, suffix in _SUFFIX.items():
        if path.name.endswith(suffix):
            return fmt
    raise ValueError(f"{path}: not a detector artifact format ({', '.join(_SUFFIX.values())})")


def _runner_call(path: Path, fmt: str, meta: dict[str, Any]) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    import importlib

    runner = importlib.import_module(f"mobile_export.{fmt}").open_runner(path, meta)
    return lambda frame: runner(frame)


def verify_detector_artifact(path: Path, manifest: dict[str, Any] | None, result) -> None:
    """The verify steps for a detector artifact, added to ``result`` (a verify ArtifactResult):
    integrity, metadata (sidecar vs embedded, schema), inputs/outputs against the metadata,
    delegation, parity against the eager reference on real frames."""
    from .verify import check_integrity

    path = Path(path)
    fmt = _format_of(path)
    side = sidecar_path(path)
    if not check_integrity(path, manifest, result):
        return
    try:
        sidecar = _read_sidecar(path) if side.exists() else None
        embedded = read_detector_embedded_metadata(path, fmt)
    except (MetadataError, ArtifactLoadError) as e:
        result.add("metadata", False, str(e))
        return
    if sidecar is None and embedded is None:
        result.add("metadata", False, f"{path}: neither a sidecar {side.name} nor embedded metadata")
        return
    if sidecar is not None and embedded is not None and sidecar != embedded:
        diff = sorted(k for k in set(sidecar) | set(embedded) if sidecar.get(k) != embedded.get(k))
        result.add("metadata", False, f"{path}: sidecar {side.name} differs from the embedded metadata in: {', '.join(diff)}")
        return
    meta = embedded if embedded is not None else sidecar
    if meta["format"] != fmt:
        result.add("metadata", False, f"{path}: format is {meta['format']!r} but the file is a {fmt} artifact")
        return
    spec = meta["detector_spec"]
    result.add("metadata", True, f"person detector {spec['input_size'][0]}x{spec['input_size'][1]}, {meta['precision']}")
    import importlib

    module = importlib.import_module(f"mobile_export.{fmt}")
    try:
        observed = module.inspect(path)
    except ArtifactLoadError as e:
        result.add("load", False, str(e))
        return
    mismatches = _compare_outputs(observed, meta)
    if not result.add("inputs/outputs", not mismatches,
                      f"{path}: " + "; ".join(mismatches) if mismatches else "match the metadata"):
        return
    if fmt in ("executorch", "tflite"):
        report = delegation_report(path, fmt)
        outside = report["outside"]
        allowed = {"aten::_to_copy", "dim_order_ops::_to_dim_order_copy", "CAST", "DEQUANTIZE"}
        extra = [o for o in outside if o not in allowed]
        result.add("delegation", not extra and bool(report["delegate_calls"]),
                   f"{report['delegate_calls']} delegate call(s); outside: {outside or 'nothing'}")
    try:
        call = _runner_call(path, fmt, meta)
    except RuntimeUnavailable as e:
        result.add("run", None, str(e))
        return
    except ArtifactLoadError as e:
        result.add("run", False, str(e))
        return
    try:
        parity = detector_parity(call, meta, parity_frames())
    except (ArtifactLoadError, ValueError) as e:
        result.add("parity", False, f"{path}: {e}")
        return
    result.add("parity", parity.passed, parity.line() + ("; " + "; ".join(parity.failures) if parity.failures else ""))


def _compare_outputs(observed: ObservedIO, meta: dict[str, Any]) -> list[str]:
    want_in = [meta["input"]["height"], meta["input"]["width"]]
    problems = []
    if len(observed.inputs) != 1:
        problems.append(f"{len(observed.inputs)} inputs, the metadata describes 1")
    else:
        shape = list(observed.inputs[0].shape)
        hw = shape[1:3] if meta["input"]["layout"] == "NHWC" else shape[2:4]
        if hw != want_in:
            problems.append(f"input is {shape}, the metadata says {meta['input']['width']}x{meta['input']['height']}")
    if len(observed.outputs) != len(OUTPUTS):
        problems.append(f"{len(observed.outputs)} outputs, the metadata describes {len(OUTPUTS)}")
        return problems
    by_name = {o.name: o for o in observed.outputs}
    for i, name in enumerate(OUTPUTS):
        o: TensorInfo = by_name.get(name) if observed.names_known else observed.outputs[i]
        if o is None:
            problems.append(f"no output named {name!r}")
            continue
        want = meta["outputs"][name]["shape"]
        if list(o.shape) != want:
            problems.append(f"output {name} is {list(o.shape)}, the metadata says {want}")
    return problems


# --------------------------------------------------------------------------- bench


def open_detector_call(path: Path) -> Callable[[], Any]:
    """One timed detector inference of the artifact at ``path``: a real letterboxed frame (the
    package's sample photo) in, boxes and scores out, in the artifact's runtime."""
    import importlib

    from starpose.sample_data import SAMPLES_DIR

    path = Path(path)
    fmt = _format_of(path)
    meta = _read_sidecar(path)
    runner = importlib.import_module(f"mobile_export.{fmt}").open_runner(path, meta)
    import cv2

    bgr = cv2.imread(str(SAMPLES_DIR / "astronaut.jpg"), cv2.IMREAD_COLOR)
    spec = DetectorSpec.from_dict(meta["detector_spec"])
    from starpose.detect.processing import letterbox

    canvas, _ = letterbox(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), spec)
    return lambda: runner(canvas)


def bench_fields(path: Path) -> dict[str, Any]:
    """What bench records about a detector artifact (from its sidecar)."""
    meta = _read_sidecar(Path(path))
    return {"variant": meta["detector_spec"]["name"], "precision": meta["precision"], "backend": meta["backend"],
            "has_metadata": True}
