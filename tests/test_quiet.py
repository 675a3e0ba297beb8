"""The two dependency messages ``starpose._quiet`` drops, and that everything else still passes."""
from __future__ import annotations

import logging

import pytest
import torch

import starpose  # noqa: F401  (installs the filters)
from starpose._quiet import CudaOnlyTorchaoKernels, TorchaoEnumConstant


def _record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)


def test_cuda_only_torchao_kernels_are_dropped_and_nothing_else():
    f = CudaOnlyTorchaoKernels()
    if torch.version.cuda is not None:
        pytest.skip("with a CUDA build of torch a failure to load these kernels is reported, by design")
    for so in ("/x/site-packages/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so", "/x/torchao/_C_cutlass_90a.abi3.so"):
        assert not f.filter(_record("torchao", f"Failed to load {so}: Could not load this library: {so}"))
    for msg in ("Failed to load /x/torchao/_C.abi3.so: undefined symbol", "Skipping import of cpp extensions",
                "Failed to load /x/other/_C_mxfp8.so: nope"):
        assert f.filter(_record("torchao", msg))


def test_kernel_preference_pytree_warning_is_dropped_and_nothing_else():
    f = TorchaoEnumConstant()
    assert not f.filter(_record("torch.utils._pytree", "<enum 'KernelPreference'> is an Enum subclass and is now "
                                                        "natively supported by torch.compile as an opaque value type."))
    assert f.filter(_record("torch.utils._pytree", "<enum 'Other'> is an Enum subclass and is now natively supported"))


def test_filters_are_installed_once_on_import():
    import importlib

    from starpose import _quiet

    _quiet.install()
    importlib.reload(_quiet).install()  # a second install (or a reloaded module) adds no duplicate
    names = {"torchao": "CudaOnlyTorchaoKernels", "torch.utils._pytree": "TorchaoEnumConstant"}
    for logger, kind in names.items():
        assert [type(f).__name__ for f in logging.getLogger(logger).filters].count(kind) == 1


def test_leafspec_deprecation_is_ignored_and_other_future_warnings_are_not():
    import warnings

    from starpose import _quiet

    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        _quiet.install()
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
        warnings.warn("something else is deprecated", FutureWarning)
    assert [str(w.message) for w in caught] == ["something else is deprecated"]
