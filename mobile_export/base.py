"""What every exporter shares: options, the ``Exporter`` table entry, runners, staged output.

An exporter is a pure function ``export(network, out_dir, options) -> list[Path]`` plus the means
to open what it wrote in the real runtime (``open_runner``) and to read an artifact's declared
inputs and outputs without running it (``inspect``). Heavy dependencies (executorch, coremltools,
litert-torch, onnx) are imported inside those functions, never at module import.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from .metadata import WeightsInfo

if TYPE_CHECKING:  # torch is not imported by a runtime-only process (bench workers)
    import torch.nn as nn

__all__ = [
    "PRECISIONS",
    "EXTRA_HINT",
    "ExportOptions",
    "Exporter",
    "Runner",
    "TensorInfo",
    "ObservedIO",
    "MissingExtraError",
    "RuntimeUnavailable",
    "ArtifactLoadError",
    "Staging",
    "remove_interrupted_exports",
    "artifact_stem",
    "image_array",
    "name_outputs",
    "require",
    "runtime_threads",
    "set_runtime_threads",
]

PRECISIONS: tuple[str, ...] = ("fp32", "fp16")
EXTRA_HINT = "pip install 'starpose-mobile[export]'"


_RUNTIME_THREADS = 1


def set_runtime_threads(threads: int) -> None:
    """Thread count for the runtimes that runners open from now on in this process (LiteRT,
    ONNX Runtime, PyTorch). ExecuTorch's XNNPACK pool is process-wide and must be sized before
    the first program loads: ``bench`` does that in a fresh process per runtime and thread count.
    Default 1: parity and verify are single-threaded."""
    global _RUNTIME_THREADS
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    _RUNTIME_THREADS = int(threads)


def runtime_threads() -> int:
    return _RUNTIME_THREADS


class MissingExtraError(ImportError):
    """An optional dependency of one format is not installed."""


class RuntimeUnavailable(RuntimeError):
    """The artifact is fine but its runtime cannot run on this machine (e.g. Core ML on Linux)."""


class ArtifactLoadError(RuntimeError):
    """The runtime refused to load the artifact (corrupt or incompatible file)."""


def require(module: str, fmt: str) -> Any:
    """Import ``module`` for format ``fmt`` or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"the {fmt} exporter needs the Python package '{module}', which is not importable ({e}); "
            f"install it with: {EXTRA_HINT}"
        ) from e


@dataclass(frozen=True)
class ExportOptions:
    """Choices shared by every format. ``affine`` adds the crop → image matrix input; ``raw``
    adds the SimCC vectors to the outputs (debugging and parity)."""

    precision: str = "fp32"
    weights: WeightsInfo = field(default_factory=WeightsInfo.unknown)
    affine: bool = False
    raw: bool = False
    progress: Callable[[str], None] = field(default=lambda message: None, compare=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


def artifact_stem(variant: str, tag: str | None, options: ExportOptions) -> str:
    """``starpose_t[_tag]_fp32[_affine][_raw]``: one name per distinct artifact."""
    parts = [variant] + ([tag] if tag else []) + [options.precision]
    if options.affine:
        parts.append("affine")
    if options.raw:
        parts.append("raw")
    return "_".join(parts)


def image_array(crop: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """HWC RGB uint8 crop → the artifact's declared layout and dtype, with the batch axis."""
    h, w = meta["input"]["height"], meta["input"]["width"]
    x = np.asarray(crop)
    if x.shape != (h, w, 3) or x.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB crop of shape ({h}, {w}, 3), got {x.dtype} {x.shape}")
    if meta["input"]["layout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None]).astype(meta["input"]["dtype"], copy=False)


def name_outputs(values: list[np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """Positional outputs → names from the metadata; surplus outputs are called ``output_<i>``
    (so that a count mismatch shows up in the comparison with the metadata)."""
    return {(names[i] if i < len(names) else f"output_{i}"): v for i, v in enumerate(values)}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy-style name: "uint8", "float32", ...


@dataclass(frozen=True)
class ObservedIO:
    """Inputs and outputs as the artifact itself declares (or produces) them. ``names_known``
    is False where the format has only positions (ExecuTorch, lite interpreter)."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    names_known: bool = True


class Runner(Protocol):
    """An artifact opened in its runtime: one uint8 HWC RGB crop (and the crop → image matrix
    when the artifact has that input) → named float32 outputs with the batch axis kept."""

    def __call__(self, crop: np.ndarray, crop_to_image: np.ndarray | None = None) -> dict[str, np.ndarray]: ...

    def observed_io(self) -> ObservedIO: ...


@dataclass(frozen=True)
class Exporter:
    """One row of the ``FORMATS`` table."""

    name: str
    summary: str
    requires: tuple[str, ...]
    precisions: tuple[str, ...]
    suffixes: tuple[str, ...]
    export: Callable[[nn.Module, Path, ExportOptions], list[Path]]
    open_runner: Callable[[Path, dict[str, Any]], Runner]
    inspect: Callable[[Path], ObservedIO]
    read_embedded_metadata: Callable[[Path], dict[str, Any] | None]

    def check_available(self) -> None:
        """Raise :class:`MissingExtraError` when a dependency of this format is missing."""
        for module in self.requires:
            require(module, self.name)

    def owns(self, path: Path) -> bool:
        return any(path.name.endswith(s) for s in self.suffixes)


# Staged names carry the writing process and a hash of its host: ``.tmp-<id>-p<pid>-h<host>-NAME`` (and
# ``.old-…`` for a directory being swapped out), so a later export can tell a killed export's leftovers from
# those of one still running beside it.
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
_STAGED_NAME = re.compile(r"^\.(tmp|old)-[0-9a-f]{8}-p(\d+)-h([0-9a-f]{6})-(.+)$")


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process on this machine. Only POSIX can ask without touching it (on
    Windows ``os.kill(pid, 0)`` would send Ctrl-C), so elsewhere every writer counts as alive."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_interrupted_exports(out_dir: Path) -> list[str]:
    """Clear what exports killed mid-way (SIGKILL, out of memory, power loss: no ``except`` ran) left in
    ``out_dir``; returns one line per file or folder dealt with.

    Staged outputs of a dead writer on this host are removed. A directory artifact (``.mlpackage``) that was
    being swapped out when its writer died is put back under its name if nothing took its place (the
    previous, complete artifact), else removed. Leftovers of live writers, of other hosts (a shared folder)
    and of older versions of the package (no writer in the name) are left alone.
    """
    done: list[str] = []
    try:
        entries = sorted(Path(out_dir).iterdir())
    except FileNotFoundError:
        return done
    for entry in entries:
        m = _STAGED_NAME.match(entry.name)
        if m is None:
            continue
        kind, pid, host, name = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        if host != _HOST or _process_alive(pid):  # this process, too, is alive
            continue
        final = entry.with_name(name)
        if kind == "old" and not (final.exists() or final.is_symlink()):
            os.replace(entry, final)
            done.append(f"restored {name} (the export replacing it was killed)")
        else:
            _remove(entry)
            done.append(f"removed {entry.name}")
    return done


class Staging:
    """Write every output under a temporary name next to its final place; ``commit`` renames them
    all, and leaving the ``with`` block by an exception removes them. A failed export therefore
    leaves nothing half-made, and an earlier artifact of the same name stays until the new one is
    complete. Works for files and for directories (``.mlpackage``). Entering the block first clears
    what killed exports left in the folder (:func:`remove_interrupted_exports`), saying so on stderr.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self._tag = f"{uuid.uuid4().hex[:8]}-p{os.getpid()}-h{_HOST}"
        self._staged: dict[Path, Path] = {}
        self.committed: list[Path] = []
        self.cleared: list[str] = []

    def path(self, name: str) -> Path:
        """Temporary path for final ``out_dir/name``; it keeps the suffix (tools check it)."""
        final = self.out_dir / name
        if final in self._staged:
            raise ValueError(f"{name} staged twice")
        tmp = self.out_dir / f".tmp-{self._tag}-{name}"
        self._staged[final] = tmp
        return tmp

    def write_bytes(self, name: str, data: bytes) -> Path:
        tmp = self.path(name)
        tmp.write_bytes(data)
        return tmp

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def __enter__(self) -> "Staging":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.cleared = remove_interrupted_exports(self.out_dir)
        if self.cleared:
            from starpose._quiet import say  # our own line: shown even while the exporter's output is captured

            say(f"{self.out_dir}: cleared {len(self.cleared)} leftover(s) of interrupted exports: "
                + "; ".join(self.cleared), err=True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.discard()

    def discard(self) -> None:
        for tmp in self._staged.values():
            _remove(tmp)
        self._staged.clear()

    def commit(self) -> list[Path]:
        missing = [str(t) for t in self._staged.values() if not t.exists()]
        if missing:
            self.discard()
            raise RuntimeError(f"export did not produce {', '.join(missing)}")
        for final, tmp in self._staged.items():
            if final.is_dir() and not final.is_symlink():
                old = final.with_name(f".old-{self._tag}-{final.name}")
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old)
            else:
                os.replace(tmp, final)
            self.committed.append(final)
        self._staged.clear()
        return list(self.committed)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
