"""TorchScript: ``.pt`` (full JIT) and ``.ptl`` (lite interpreter, PyTorch Mobile).

The bundle is traced with ``torch.jit.trace``; the ``.ptl`` additionally goes through
``torch.utils.mobile_optimizer.optimize_for_mobile`` (conv/BN folding, prepacked XNNPACK
weights) and is saved for the lite interpreter, which is what ``org.pytorch:pytorch_android_lite``
and the LibTorch-Lite pod load. PyTorch Mobile is in maintenance (ExecuTorch replaces it); these
artifacts serve existing apps and desktop checks. fp32 only: PyTorch Mobile's CPU kernels compute
in float32, so an fp16 TorchScript graph would be slower, not faster.

Metadata: the extra file ``metadata.json`` inside the archive (``torch.jit.load(...,
_extra_files=...)``, ``Module.load(path, extraFiles)`` on Android) and the sidecar JSON.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import (
    ArtifactLoadError,
    ExportOptions,
    ObservedIO,
    Staging,
    TensorInfo,
    artifact_stem,
    image_array,
    name_outputs,
)
from .metadata import build_metadata, dumps, parse_metadata, sidecar_path

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

# torch is imported inside the functions (the FORMATS table imports every format module).

__all__ = ["export_torchscript", "open_runner", "inspect", "read_embedded_metadata", "mobile_optimizer_available"]

NAME = "torchscript"
LAYOUT = "NHWC"  # the bytes of an Android Bitmap / iOS pixel buffer, alpha dropped
EXTRA_FILE = "metadata.json"
_KINDS = {".pt": "torchscript", ".ptl": "lite_interpreter"}
_NO_XNNPACK = ("optimize_for_mobile skipped: this PyTorch build has no XNNPACK (torch._C._is_xnnpack_enabled() "
               "is False), and its mobile passes need it; the .ptl holds the frozen graph (conv+BN folded) "
               "without prepacked XNNPACK weights. Export with a PyTorch build that has XNNPACK to get them.")


def mobile_optimizer_available() -> bool:
    """``optimize_for_mobile`` (CPU) needs a PyTorch built with XNNPACK; some CPU wheels are not."""
    import torch

    return bool(torch._C._is_xnnpack_enabled())


def export_torchscript(network: nn.Module, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``<stem>.pt`` and ``<stem>.ptl`` with their sidecars; returns the paths."""
    import torch

    with torch.no_grad():
        return _export_torchscript(network, out_dir, options)


def _export_torchscript(network: nn.Module, out_dir: Path, options: ExportOptions) -> list[Path]:
    import torch
    from torch.utils.mobile_optimizer import optimize_for_mobile

    from .bundle import PoseBundle

    if options.precision != "fp32":
        raise ValueError(f"TorchScript export is fp32 only (PyTorch Mobile computes in float32); got {options.precision}")
    spec = network.spec
    variant = getattr(network, "variant", "custom")
    bundle = PoseBundle(network, spec, layout=LAYOUT, affine=options.affine, raw=options.raw).eval()
    stem = artifact_stem(variant, None, options)
    options.progress(f"torchscript: tracing → {stem}.pt, {stem}.ptl")
    traced = torch.jit.trace(bundle, bundle.example_inputs(), check_trace=False)
    traced = torch.jit.freeze(traced.eval())  # folds conv+BN, inlines weights
    mobile_ok = mobile_optimizer_available()
    if mobile_ok:
        options.progress("torchscript: optimize_for_mobile")
        mobile = optimize_for_mobile(traced)
    else:
        options.progress(f"torchscript: WARNING {_NO_XNNPACK}")
        mobile = traced
    with Staging(out_dir) as stage:
        for suffix, backend in _KINDS.items():
            runtime: dict[str, Any] = {"name": "pytorch", "platforms": ["linux", "macos", "windows"]}
            if suffix == ".ptl":
                runtime = {"name": "pytorch_lite", "platforms": ["android", "ios"], "optimize_for_mobile": mobile_ok}
                if not mobile_ok:
                    runtime["notes"] = _NO_XNNPACK
            meta = build_metadata(
                spec, variant=variant, weights=options.weights, fmt=NAME, precision=options.precision,
                backend=backend, layout=LAYOUT, affine=options.affine, raw=options.raw, runtime=runtime,
            )
            extra = {EXTRA_FILE: dumps(meta)}
            tmp = stage.path(stem + suffix)
            if suffix == ".pt":
                torch.jit.save(traced, str(tmp), _extra_files=extra)
            else:
                mobile._save_for_lite_interpreter(str(tmp), _extra_files=extra)
            stage.write_text(sidecar_path(Path(stem + suffix)).name, dumps(meta))
        return stage.commit()


def read_embedded_metadata(path: Path) -> dict[str, Any] | None:
    """The ``metadata.json`` extra file, read from the zip archive (works for .pt and .ptl)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(f"/extra/{EXTRA_FILE}")]
            if not names:
                return None
            text = z.read(names[0]).decode("utf-8")
    except Exception as e:  # noqa: BLE001 - zipfile raises BadZipFile, zlib.error, EOFError, ValueError, ...
        raise ArtifactLoadError(f"{path}: not a readable TorchScript archive ({type(e).__name__}: {e})") from e
    return parse_metadata(text, f"{path} (extra file {EXTRA_FILE})")


def _load(path: Path) -> Any:
    import torch

    try:
        if path.suffix == ".ptl":
            from torch.jit.mobile import _load_for_lite_interpreter

            return _load_for_lite_interpreter(str(path))
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError and friends
        raise ArtifactLoadError(f"{path}: PyTorch could not load it ({e})") from e


class _Runner:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = meta
        self.module = _load(self.path)
        self.names = list(meta["outputs"])
        self._last: ObservedIO | None = None

    def observed_io(self) -> ObservedIO:
        """TorchScript keeps no static shapes: run once on a grey crop and observe."""
        h, w = self.meta["input"]["height"], self.meta["input"]["width"]
        crop = np.full((h, w, 3), 128, np.uint8)
        eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        inputs = self._inputs(crop, eye)
        outs = self._run(inputs)
        return ObservedIO(
            tuple(TensorInfo(f"input_{i}", tuple(t.shape), str(t.dtype).replace("torch.", "")) for i, t in enumerate(inputs)),
            tuple(TensorInfo(f"output_{i}", tuple(o.shape), str(o.dtype).replace("torch.", "")) for i, o in enumerate(outs)),
            names_known=False,
        )

    def _inputs(self, crop: np.ndarray, crop_to_image: np.ndarray | None) -> list[torch.Tensor]:
        import torch

        inputs = [torch.from_numpy(image_array(crop, self.meta))]
        if self.meta["affine_input"]["present"]:
            if crop_to_image is None:
                raise ValueError(f"{self.path.name} has a crop_to_image input: pass the matrix")
            inputs.append(torch.as_tensor(np.asarray(crop_to_image, np.float32).reshape(1, 2, 3)))
        return inputs

    def _run(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        import torch

        try:
            with torch.no_grad():
                outs = self.module(*inputs)
        except Exception as e:  # noqa: BLE001
            raise ArtifactLoadError(f"{self.path}: PyTorch failed to run it ({e})") from e
        return list(outs) if isinstance(outs, (tuple, list)) else [outs]

    def __call__(self, crop: np.ndarray, crop_to_image: np.ndarray | None = None) -> dict[str, np.ndarray]:
        outs = self._run(self._inputs(crop, crop_to_image))
        return name_outputs([o.float().numpy() for o in outs], self.names)


def open_runner(path: Path, meta: dict[str, Any]) -> _Runner:
    return _Runner(path, meta)


def inspect(path: Path) -> ObservedIO:
    meta = read_embedded_metadata(Path(path))
    if meta is None:
        raise ArtifactLoadError(f"{path}: no embedded {EXTRA_FILE}; cannot tell its input size")
    return _Runner(Path(path), meta).observed_io()
