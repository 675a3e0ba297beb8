"""Artifact metadata: what an app must know to feed an artifact and read its outputs.

Built from the one :class:`~starpose.spec.PoseSpec` (nothing re-typed), written once into each
format's native slot (ExecuTorch ``metadata`` method, Core ML ``user_defined_metadata``, TFLite
model metadata, TorchScript extra file, ONNX ``metadata_props``) and into a JSON sidecar
``<artifact>.json`` next to the artifact, and never mutated afterwards. The schema (format_version 1)
is the project's shared one (see ``docs/EXPORT.md``); the demo apps parse the same documents.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starpose.spec import PoseSpec

from .contract import AFFINE_INPUT, IMAGE_INPUT, LAYOUTS, output_names

__all__ = [
    "FORMAT_VERSION",
    "FORMAT_NAMES",
    "METADATA_PRECISIONS",
    "KEYPOINT_UNITS",
    "MetadataError",
    "WeightsInfo",
    "build_metadata",
    "dumps",
    "parse_metadata",
    "read_metadata_file",
    "sidecar_path",
    "spec_from_metadata",
    "state_dict_sha256",
]

FORMAT_VERSION = 1
FORMAT_NAMES: tuple[str, ...] = ("executorch", "coreml", "tflite", "torchscript", "onnx")
METADATA_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
INPUT_DTYPES: tuple[str, ...] = ("uint8", "float32")
NORMALIZATIONS: tuple[str, ...] = ("in_graph", "external")
KEYPOINT_UNITS: tuple[str, ...] = ("crop pixels", "image pixels")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class MetadataError(ValueError):
    """Metadata that is malformed or does not describe its artifact; the message names the
    file and the JSON path of the fault (e.g. ``input.width``)."""


@dataclass(frozen=True)
class WeightsInfo:
    """Where the exported weights came from. ``sha256`` is the weights file's hash, or for
    random initialisation the hash of the state dict saved as safetensors (``state_dict_sha256``)."""

    name: str
    sha256: str
    source: str  # "pretrained" | "file" | "random" | "unknown"
    seed: int | None = None

    @classmethod
    def unknown(cls) -> "WeightsInfo":
        return cls(name="unknown", sha256="0" * 64, source="unknown")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"weights": self.name, "weights_sha256": self.sha256, "weights_source": self.source}
        if self.seed is not None:
            d["seed"] = self.seed
        return d


def state_dict_sha256(state: dict[str, Any]) -> str:
    """Hash of a state dict serialized as safetensors (deterministic: sorted keys, fixed header)."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    return hashlib.sha256(save(tensors)).hexdigest()


def sidecar_path(artifact: Path) -> Path:
    """``model.tflite`` → ``model.tflite.json``."""
    return artifact.with_name(artifact.name + ".json")


def build_metadata(
    spec: PoseSpec,
    *,
    variant: str,
    weights: WeightsInfo,
    fmt: str,
    precision: str,
    backend: str,
    layout: str,
    affine: bool,
    raw: bool,
    input_dtype: str = "uint8",
    input_type: str = "tensor",
    runtime: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata document of one artifact (shared schema, format_version 1).

    Fields beyond the shared schema: ``model.weights_source`` / ``model.seed``, ``input.type``
    (``"image"`` for a Core ML image input), and ``runtime`` (where the artifact runs and notes).
    """
    from starpose import __version__

    k = spec.num_keypoints
    lx, ly = spec.simcc_lengths
    shapes = {"keypoints": [1, k, 2], "scores": [1, k], "simcc_x": [1, k, lx], "simcc_y": [1, k, ly]}
    outputs: dict[str, Any] = {}
    for name in output_names(raw):
        outputs[name] = {"shape": shapes[name]}
    outputs["keypoints"]["units"] = "image pixels" if affine else "crop pixels"
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": {"variant": variant, **weights.to_dict(), "package_version": __version__},
        "spec": spec.to_dict(),
        "input": {
            "name": IMAGE_INPUT,
            "dtype": input_dtype,
            "color": "RGB",
            "layout": layout,
            "width": spec.input_w,
            "height": spec.input_h,
            "normalization": "in_graph",
            "type": input_type,
        },
        "affine_input": {"name": AFFINE_INPUT, "shape": [1, 2, 3], "present": bool(affine)},
        "outputs": outputs,
        "format": fmt,
        "precision": precision,
        "backend": backend,
    }
    if runtime:
        meta["runtime"] = runtime
    return parse_metadata(dumps(meta), f"<new {fmt} metadata>")


def dumps(meta: dict[str, Any]) -> str:
    return json.dumps(meta, indent=2, ensure_ascii=False) + "\n"


def read_metadata_text(path: Path) -> str:
    """A metadata sidecar's text; :class:`MetadataError` naming the file when it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise MetadataError(f"{path}: metadata file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise MetadataError(f"{path}: cannot read metadata ({e})") from e


def read_metadata_file(path: Path) -> dict[str, Any]:
    return parse_metadata(read_metadata_text(path), str(path))


def spec_from_metadata(meta: dict[str, Any]) -> PoseSpec:
    return PoseSpec.from_dict(meta["spec"])


def parse_metadata(text: str, where: str) -> dict[str, Any]:
    """Parse and check one metadata document; a fault raises :class:`MetadataError` whose message
    starts with ``where`` and names the JSON path."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise MetadataError(f"{where}: not valid JSON ({e})") from e
    _Checker(where).check(doc)
    return doc


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, problem: str) -> None:
        raise MetadataError(f"{self.where}: {path}: {problem}")

    def obj(self, d: Any, path: str) -> dict[str, Any]:
        if not isinstance(d, dict):
            self.fail(path or "(top level)", f"expected a JSON object, found {type(d).__name__}")
        return d

    def get(self, d: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...]) -> Any:
        full = f"{path}.{key}" if path else key
        if key not in d:
            self.fail(full, "missing")
        value = d[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(full, f"expected {'/'.join(k.__name__ for k in kinds)}, found a boolean")
        if not isinstance(value, kinds):
            self.fail(full, f"expected {'/'.join(k.__name__ for k in kinds)}, found {type(value).__name__}")
        return value

    def choice(self, d: dict[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
        value = self.get(d, key, path, str)
        if value not in allowed:
            self.fail(f"{path}.{key}" if path else key, f"{value!r} is not one of {list(allowed)}")
        return value

    def shape(self, d: dict[str, Any], path: str, expected: list[int]) -> None:
        shape = self.get(d, "shape", path, list)
        if shape != expected:
            self.fail(f"{path}.shape", f"{shape} does not match the spec, which implies {expected}")

    def check(self, doc: Any) -> None:
        doc = self.obj(doc, "")
        version = self.get(doc, "format_version", "", int)
        if version != FORMAT_VERSION:
            self.fail("format_version", f"{version} is not supported (this reader knows {FORMAT_VERSION})")
        model = self.obj(self.get(doc, "model", "", dict), "model")
        for key in ("variant", "weights", "package_version"):
            self.get(model, key, "model", str)
        if not _SHA256.match(self.get(model, "weights_sha256", "model", str)):
            self.fail("model.weights_sha256", "expected 64 lowercase hex digits")
        spec = self.spec(self.get(doc, "spec", "", dict))
        k = spec.num_keypoints
        inp = self.get(doc, "input", "", dict)
        self.get(inp, "name", "input", str)
        self.choice(inp, "dtype", "input", INPUT_DTYPES)
        self.choice(inp, "layout", "input", LAYOUTS)
        self.choice(inp, "normalization", "input", NORMALIZATIONS)
        for key, want in (("width", spec.input_w), ("height", spec.input_h)):
            got = self.get(inp, key, "input", int)
            if got != want:
                self.fail(f"input.{key}", f"{got} does not match spec.input_size {list(spec.input_size)}")
        affine = self.get(doc, "affine_input", "", dict)
        present = self.get(affine, "present", "affine_input", bool)
        if present:
            self.get(affine, "name", "affine_input", str)
            self.shape(affine, "affine_input", [1, 2, 3])
        outputs = self.get(doc, "outputs", "", dict)
        if not outputs:
            self.fail("outputs", "no outputs described")
        lx, ly = spec.simcc_lengths
        expected = {"keypoints": [1, k, 2], "scores": [1, k], "simcc_x": [1, k, lx], "simcc_y": [1, k, ly]}
        for name, out in outputs.items():
            out = self.obj(out, f"outputs.{name}")
            if name not in expected:
                self.fail(f"outputs.{name}", f"unknown output (known: {list(expected)})")
            self.shape(out, f"outputs.{name}", expected[name])
        if "keypoints" in outputs:
            if "scores" not in outputs:
                self.fail("outputs.scores", "missing (keypoints come with scores)")
            units = self.choice(outputs["keypoints"], "units", "outputs.keypoints", KEYPOINT_UNITS)
            if (units == "image pixels") != present:
                self.fail("outputs.keypoints.units", f"{units!r} but affine_input.present is {present}")
        elif not {"simcc_x", "simcc_y"} <= set(outputs):
            self.fail("outputs", "neither keypoints/scores nor simcc_x/simcc_y")
        self.choice(doc, "format", "", FORMAT_NAMES)
        self.choice(doc, "precision", "", METADATA_PRECISIONS)
        self.get(doc, "backend", "", str)

    def spec(self, d: dict[str, Any]) -> PoseSpec:
        names = self.get(d, "keypoint_names", "spec", list)
        n = self.get(d, "num_keypoints", "spec", int)
        if n != len(names):
            self.fail("spec.num_keypoints", f"{n} but spec.keypoint_names has {len(names)} entries")
        for key in ("skeleton", "flip_pairs"):
            for pair in self.get(d, key, "spec", list):
                if (not isinstance(pair, list) or len(pair) != 2
                        or not all(isinstance(i, int) and 0 <= i < n for i in pair)):
                    self.fail(f"spec.{key}", f"pair {pair} is not two indices in 0..{n - 1}")
        try:
            spec = PoseSpec.from_dict(d)
        except (TypeError, ValueError, KeyError) as e:
            self.fail("spec", f"{type(e).__name__}: {e}")
        lengths = d.get("simcc_lengths")
        if lengths is not None and list(lengths) != list(spec.simcc_lengths):
            self.fail("spec.simcc_lengths", f"{lengths} but input_size x split ratio gives {list(spec.simcc_lengths)}")
        return spec
