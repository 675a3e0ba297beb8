"""Silence three known-harmless messages of dependencies.

The torchao wheel ships CUDA-only kernels (``_C_mxfp8``, ``_C_cutlass_*``) and tries to load
them on every import; with a CPU build of torch that fails and torchao logs "Failed to load ...
Could not load this library" as a warning, twice, in every command that exports or quantizes.
Nothing in this project uses those kernels. The filter drops exactly those two records (and
only with a CPU build of torch); every other torchao message, including a failure to load any
other extension, still comes through.

torchao 0.18 also registers its ``KernelPreference`` enum as a pytree constant, which torch 2.13
answers with a deprecation warning on every import (torchao's to fix, not ours). That one
record is dropped too. And torch 2.13 deprecates its own ``LeafSpec`` class with a
FutureWarning that fires whenever one is constructed, which ``copy.deepcopy`` of an exported
program does from inside torch and ExecuTorch (a dozen lines per export); that warning
(exactly that message) is ignored.
"""
from __future__ import annotations

import logging
import re
import warnings

__all__ = ["CudaOnlyTorchaoKernels", "TorchaoEnumConstant", "install"]

_CUDA_ONLY = re.compile(r"^Failed to load \S*torchao[/\\]_C_(mxfp8|cutlass)\w*[.\w-]*\.so\b")


class CudaOnlyTorchaoKernels(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _CUDA_ONLY.match(record.getMessage()):
            return True
        import torch  # already imported: torchao is logging

        return torch.version.cuda is not None  # a CUDA build can load them; a failure there means something


class TorchaoEnumConstant(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("<enum 'KernelPreference'> is an Enum subclass and is now natively")


def _add(logger_name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(logger_name)
    # by name, not isinstance: a reloaded module's class is a new type but the same filter
    if not any(type(f).__qualname__ == kind.__qualname__ and type(f).__module__ == kind.__module__
               for f in logger.filters):
        logger.addFilter(kind())


def install() -> None:
    """Add the filters (once). Imports nothing: torch is asked only when torchao logs."""
    _add("torch.utils._pytree", TorchaoEnumConstant)
    _add("torchao", CudaOnlyTorchaoKernels)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
