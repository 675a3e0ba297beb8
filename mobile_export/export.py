"""Run exporters from the ``FORMATS`` table and record the results in ``manifest.json``.

What the converters print (coremltools' pass-pipeline progress bars, import notices, LiteRT's
step timings, ExecuTorch's partitioner log, native log lines) is captured per format and shown
only when that format fails or with ``--verbose`` (:func:`starpose._quiet.captured`); the
``progress`` callback still reaches the terminal from inside."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch.nn as nn

from starpose._quiet import captured, outside

from .base import ExportOptions, Exporter
from .formats import FORMATS
from .manifest import update_manifest
from .metadata import WeightsInfo, read_metadata_file, sidecar_path
from .source import deploy_network

__all__ = ["export_formats", "formats_for", "wrote_line"]


def formats_for(name: str, precision: str) -> list[Exporter]:
    """``"all"`` → every format that offers ``precision``; a name → that format (which must)."""
    if name == "all":
        return [e for e in FORMATS.values() if precision in e.precisions]
    exporter = FORMATS[name]
    if precision not in exporter.precisions:
        raise ValueError(f"{name} offers {', '.join(exporter.precisions)}, not {precision}")
    return [exporter]


def export_formats(
    model: nn.Module,
    weights: WeightsInfo,
    exporters: list[Exporter],
    out_dir: Path,
    *,
    precision: str = "fp32",
    affine: bool = False,
    raw: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> list[Path]:
    """Export ``model`` in each format into ``out_dir``; returns the artifact paths (model files,
    then sidecars) after merging them into ``out_dir/manifest.json``. Every format's
    dependencies are checked before anything is written."""
    with captured("importing the exporters"):
        for exporter in exporters:
            exporter.check_available()
    out_dir = Path(out_dir)
    network = deploy_network(model.eval())
    options = ExportOptions(precision=precision, weights=weights, affine=affine, raw=raw, progress=outside(progress))
    written: list[Path] = []
    for exporter in exporters:
        start = time.perf_counter()
        with captured(f"the {exporter.name} exporter"):
            paths = exporter.export(network, out_dir, options)
        seconds = round(time.perf_counter() - start, 2)  # the whole format: all its artifacts
        entries = {}
        for p in paths:
            if exporter.owns(p):
                meta = read_metadata_file(sidecar_path(p))
                entries[p.name] = {"role": "model", "format": exporter.name, "precision": meta["precision"],
                                   "backend": meta["backend"], "metadata": sidecar_path(p).name,
                                   "export_seconds": seconds}
            else:
                entries[p.name] = {"role": "metadata"}
        manifest = update_manifest(out_dir, entries)
        for p in paths:
            if exporter.owns(p):
                progress(wrote_line(p))
        written += paths
    if written:
        progress(f"manifest: {manifest}")
    return written


def wrote_line(artifact: Path) -> str:
    """The one progress line of a written artifact (its sidecar named, not listed)."""
    path = Path(artifact)
    n = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    size = f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"
    return f"  wrote {path} ({size}; metadata: {sidecar_path(path).name})"
