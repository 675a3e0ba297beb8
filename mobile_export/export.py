"""Run exporters from the ``FORMATS`` table and record the results in ``manifest.json``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch.nn as nn

from .base import ExportOptions, Exporter
from .formats import FORMATS
from .manifest import update_manifest
from .metadata import WeightsInfo, read_metadata_file, sidecar_path
from .source import deploy_network

__all__ = ["export_formats", "formats_for"]


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
    for exporter in exporters:
        exporter.check_available()
    out_dir = Path(out_dir)
    network = deploy_network(model.eval())
    options = ExportOptions(precision=precision, weights=weights, affine=affine, raw=raw, progress=progress)
    written: list[Path] = []
    for exporter in exporters:
        start = time.perf_counter()
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
        update_manifest(out_dir, entries)
        for p in paths:
            progress(f"  wrote {p}")
        written += paths
    return written
