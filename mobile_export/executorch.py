"""ExecuTorch ``.pte`` programs: XNNPACK (Android and iOS CPU) and Core ML (Apple) delegates.

``torch.export`` → ``executorch.exir.to_edge_transform_and_lower`` with a partitioner →
``.pte``. Ops a delegate does not take (e.g. the uint8 → float cast, argmax) run on ExecuTorch's
portable kernels inside the same program.

- XNNPACK: runs wherever ExecuTorch runs; here it is run from Python with
  ``executorch.runtime.Runtime``, the same C++ runtime the phones use.
- Core ML: the network becomes a Core ML ML Program inside the ``.pte`` (``CoreMLBackend``
  delegate). It is built on Linux but runs only on Apple platforms: the Linux pip runtime has no
  ``CoreMLBackend`` (loading the method fails with "Backend CoreMLBackend is not registered"), so
  on Linux it is checked structurally (delegate present, declared inputs/outputs) and its parity
  is measured on macOS/iOS.

Metadata: a sidecar ``<artifact>.json`` and the same JSON embedded as a constant method
``metadata`` (returns a string), so that an app holding only the ``.pte`` can read it with
``module.execute("metadata")``.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from .base import (
    ArtifactLoadError,
    ExportOptions,
    ObservedIO,
    RuntimeUnavailable,
    Staging,
    TensorInfo,
    artifact_stem,
    image_array,
    name_outputs,
    require,
)
from .metadata import build_metadata, dumps, parse_metadata, sidecar_path

if TYPE_CHECKING:
    import torch.nn as nn

    from .bundle import PoseBundle

# torch and the bundle are imported inside the functions that need them (export, running a
# program), so that importing the FORMATS table imports no framework.

__all__ = ["export_executorch", "open_runner", "inspect", "read_embedded_metadata", "delegate_ids",
           "BACKENDS", "COREML_DEPLOYMENT_TARGET"]

NAME = "executorch"
BACKENDS: tuple[str, ...] = ("xnnpack", "coreml")
LAYOUT = "NHWC"  # what Android's Bitmap.copyPixelsToBuffer / iOS CVPixelBuffer rows hold
METADATA_METHOD = "metadata"
COREML_DEPLOYMENT_TARGET = "iOS16"  # same choice as the .mlpackage; see coreml.py
_BACKEND_IDS = {"xnnpack": "XnnpackBackend", "coreml": "CoreMLBackend"}
# Casts stay on ExecuTorch's portable kernels: coremltools has no uint8 input type.
_COREML_SKIP_OPS = ["aten._to_copy.default", "dim_order_ops._to_dim_order_copy.default"]


def export_executorch(
    network: nn.Module, out_dir: Path, options: ExportOptions, backends: tuple[str, ...] = BACKENDS
) -> list[Path]:
    """Write one ``.pte`` (and its sidecar) per backend in ``backends``; returns the paths."""
    require("executorch.exir", NAME)
    from .bundle import PoseBundle

    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise ValueError(f"unknown ExecuTorch backend(s) {sorted(unknown)}; known: {BACKENDS}")
    spec = network.spec
    variant = getattr(network, "variant", "custom")
    bundle = PoseBundle(network, spec, layout=LAYOUT, affine=options.affine, raw=options.raw).eval()
    # XNNPACK computes in the graph's dtype, so fp16 means a half-precision graph; Core ML takes
    # the float32 graph and converts it with compute_precision=FLOAT16 itself.
    half = copy.deepcopy(bundle).half() if options.precision == "fp16" else bundle
    with Staging(out_dir) as stage:
        for backend in backends:
            name = artifact_stem(variant, backend, options) + ".pte"
            options.progress(f"executorch/{backend}: torch.export + lowering → {name}")
            module = half if backend == "xnnpack" else bundle
            meta = build_metadata(
                spec, variant=variant, weights=options.weights, fmt=NAME, precision=options.precision,
                backend=backend, layout=LAYOUT, affine=options.affine, raw=options.raw,
                runtime=_runtime_note(backend),
            )
            program = _lower(module, backend, options.precision, meta)
            stage.write_bytes(name, program)
            stage.write_text(sidecar_path(Path(name)).name, dumps(meta))
        return stage.commit()


def _runtime_note(backend: str) -> dict[str, Any]:
    if backend == "xnnpack":
        return {"name": "executorch", "delegate": "XnnpackBackend", "platforms": ["android", "ios", "linux", "macos"]}
    return {
        "name": "executorch",
        "delegate": "CoreMLBackend",
        "platforms": ["ios", "macos"],
        "minimum_deployment_target": COREML_DEPLOYMENT_TARGET,
        "notes": "Runs only on Apple platforms: ExecuTorch's Linux runtime has no CoreMLBackend "
                 "('Backend CoreMLBackend is not registered' there is expected).",
    }


def _lower(module: PoseBundle, backend: str, precision: str, meta: dict[str, Any]) -> bytes:
    import torch

    with torch.no_grad():
        return _lower_no_grad(module, backend, precision, meta)


def _lower_no_grad(module: PoseBundle, backend: str, precision: str, meta: dict[str, Any]) -> bytes:
    import torch
    from executorch.exir import to_edge_transform_and_lower

    ep = torch.export.export(module, module.example_inputs(), strict=False)
    if backend == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        partitioner = XnnpackPartitioner()
    else:
        require("coremltools", NAME)
        import coremltools as ct
        from executorch.backends.apple.coreml.compiler import CoreMLBackend
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner

        specs = CoreMLBackend.generate_compile_specs(
            minimum_deployment_target=getattr(ct.target, COREML_DEPLOYMENT_TARGET),
            compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        )
        partitioner = CoreMLPartitioner(compile_specs=specs, skip_ops_for_coreml_delegation=_COREML_SKIP_OPS)
    edge = to_edge_transform_and_lower(
        ep, partitioner=[partitioner], constant_methods={METADATA_METHOD: json.dumps(meta)},
        compile_config=xnnpack_edge_config() if backend == "xnnpack" else None,
    )
    return edge.to_executorch().buffer


def xnnpack_edge_config() -> Any:
    """The edge-dialect settings of the XNNPACK ``.pte``s: ``aten._to_copy`` for dtype casts instead
    of ``dim_order_ops._to_dim_order_copy``.

    The bundle's uint8 → float cast cannot enter the XNNPACK delegate (it takes no unsigned
    tensors), so it runs on ExecuTorch's portable kernels, where the 1x256x192x3 cast takes 0.32 ms
    as ``_to_dim_order_copy`` and 0.04 ms as ``_to_copy`` (ExecuTorch 1.5.1, x86, 1 thread:
    ``benchmarks/results/2026-12-02-bundle-overhead-epyc-2cpu.json``, ``python -m
    benchmarks.bundle_overhead``). Nothing else in the graph changes: no op here changes memory
    format, and the delegate takes every layout change."""
    from executorch.exir import EdgeCompileConfig

    return EdgeCompileConfig(_skip_dim_order=True)


def _parse_checked(path: Path) -> Any:
    """Parse the program in Python before the C++ runtime sees it. ExecuTorch 1.5.1's Python
    binding aborts the whole process (std::terminate from a log line it cannot decode) on a file
    whose identifier bytes are damaged, so those are checked here and refused with a message."""
    require("executorch.exir", NAME)
    from executorch.exir._serialize._program import deserialize_pte_binary

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ArtifactLoadError(f"{path}: cannot read ({e})") from e
    ident = data[4:8]
    if len(data) < 16 or ident[:2] != b"ET" or not ident[2:].isdigit():
        raise ArtifactLoadError(f"{path}: not an ExecuTorch program (file identifier {ident!r}, expected b'ET..'): "
                                "corrupt or not a .pte")
    try:
        return deserialize_pte_binary(data)
    except Exception as e:  # noqa: BLE001 - the flatbuffer reader raises many types
        raise ArtifactLoadError(f"{path}: not a readable ExecuTorch program ({type(e).__name__}: {e})") from e


def delegate_ids(path: Path) -> list[str]:
    """Backend ids of the delegates in a ``.pte`` (``"XnnpackBackend"``, ``"CoreMLBackend"``)."""
    pte = _parse_checked(path)
    return [d.id for plan in pte.program.execution_plan for d in plan.delegates]


def _load_program(path: Path) -> Any:
    require("executorch.runtime", NAME)
    from executorch.runtime import Runtime

    _parse_checked(path)
    try:
        return Runtime.get().load_program(Path(path))
    except Exception as e:  # noqa: BLE001 - the pybinding raises RuntimeError/ValueError
        raise ArtifactLoadError(f"{path}: ExecuTorch could not load the program ({e})") from e


# ExecuTorch ScalarType codes (the same numbering as c10::ScalarType) → numpy names.
_DTYPES = {0: "uint8", 1: "int8", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64", 11: "bool"}


def _tensor_infos(meta: Any, kind: str) -> tuple[TensorInfo, ...]:
    n = meta.num_inputs() if kind == "input" else meta.num_outputs()
    infos = []
    for i in range(n):
        t = meta.input_tensor_meta(i) if kind == "input" else meta.output_tensor_meta(i)
        code = int(t.dtype())
        infos.append(TensorInfo(f"{kind}_{i}", tuple(int(s) for s in t.sizes()), _DTYPES.get(code, f"scalar type {code}")))
    return tuple(infos)


def inspect(path: Path) -> ObservedIO:
    """Declared inputs/outputs of ``forward``; needs no backend, so works for Core ML ``.pte``s on Linux."""
    program = _load_program(path)
    try:
        meta = program.metadata("forward")
    except Exception as e:  # noqa: BLE001
        raise ArtifactLoadError(f"{path}: no readable 'forward' method ({e})") from e
    return ObservedIO(_tensor_infos(meta, "input"), _tensor_infos(meta, "output"), names_known=False)


def embedded_metadata_text(path: Path) -> str | None:
    """The text the program's metadata method returns (None when it has none)."""
    program = _load_program(path)
    if METADATA_METHOD not in program.method_names:
        return None
    try:
        (text,) = program.load_method(METADATA_METHOD).execute([])
    except Exception as e:  # noqa: BLE001
        raise ArtifactLoadError(f"{path}: the '{METADATA_METHOD}' method did not run ({e})") from e
    return str(text)


def read_embedded_metadata(path: Path) -> dict[str, Any] | None:
    text = embedded_metadata_text(path)
    return None if text is None else parse_metadata(text, f"{path} (embedded '{METADATA_METHOD}' method)")


class _Runner:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = meta
        ids = delegate_ids(path)
        from executorch.runtime import Runtime

        runtime = Runtime.get()
        missing = sorted({i for i in ids if not runtime.backend_registry.is_available(i)})
        if missing:
            raise RuntimeUnavailable(
                f"{path.name}: delegate {', '.join(missing)} is not registered in this ExecuTorch runtime "
                f"(available: {', '.join(runtime.backend_registry.registered_backend_names)}); "
                + ("Core ML runs only on Apple platforms" if "CoreMLBackend" in missing else "")
            )
        self.program = _load_program(path)
        try:
            self.method = self.program.load_method("forward")
        except Exception as e:  # noqa: BLE001
            raise ArtifactLoadError(f"{path}: ExecuTorch could not load 'forward' ({e})") from e
        self.names = list(meta["outputs"])

    def observed_io(self) -> ObservedIO:
        return inspect(self.path)

    def __call__(self, crop: np.ndarray, crop_to_image: np.ndarray | None = None) -> dict[str, np.ndarray]:
        import torch

        inputs = [torch.from_numpy(image_array(crop, self.meta))]
        if self.meta["affine_input"]["present"]:
            if crop_to_image is None:
                raise ValueError(f"{self.path.name} has a crop_to_image input: pass the matrix")
            inputs.append(torch.as_tensor(np.asarray(crop_to_image, np.float32).reshape(1, 2, 3)))
        try:
            outs = self.method.execute(inputs)
        except Exception as e:  # noqa: BLE001
            raise ArtifactLoadError(f"{self.path}: ExecuTorch failed to run 'forward' ({e})") from e
        return name_outputs([o.detach().float().numpy() for o in outs], self.names)


def open_runner(path: Path, meta: dict[str, Any]) -> _Runner:
    return _Runner(path, meta)
