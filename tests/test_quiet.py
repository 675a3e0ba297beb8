"""``starpose._quiet``: the known-harmless dependency messages it drops (and that everything else
still passes), the capture of what a library prints during a call (Python streams, warnings,
logging, native writes to the file descriptors, child processes), and the CLI's warning lines."""
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


# --------------------------------------------------------------------------- captured library output

CAPTURE_SCRIPT = r'''
import logging, os, subprocess, sys, warnings
from starpose import _quiet
_quiet.set_verbose(sys.argv[1] == "verbose")
with _quiet.captured("a noisy library") as cap:
    print("python print")
    sys.stderr.write("python stderr\n")
    warnings.warn("a library warning")
    logging.getLogger("lib").warning("a log record")
    os.write(1, b"native fd1\n")
    os.write(2, b"native fd2\n")
    subprocess.run([sys.executable, "-c", "import os; os.write(2, b'child process\\n')"])
    _quiet.say("our progress line")
    with _quiet.uncaptured():
        print("our own print")
print("after:", repr(cap.text.splitlines()))
'''

NOISE = ["python print", "python stderr", "a library warning", "a log record", "native fd1", "native fd2",
         "child process"]


def _capture_run(mode: str) -> tuple[list[str], list[str]]:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", CAPTURE_SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    after = [line for line in proc.stdout.splitlines() if line.startswith("after:")]
    shown = [line for line in (proc.stdout + proc.stderr).splitlines() if not line.startswith("after:")]
    return shown, after


def test_captured_hides_python_native_and_child_output_and_lets_ours_through():
    shown, after = _capture_run("quiet")
    text = "\n".join(shown)
    assert "our progress line" in text and "our own print" in text
    assert not [n for n in NOISE if n in text], text
    assert all(n in after[0] for n in NOISE), after  # all of it was captured, in the handle's text


def test_verbose_captures_nothing():
    shown, after = _capture_run("verbose")
    text = "\n".join(shown)
    assert all(n in text for n in NOISE + ["our progress line", "our own print"]), text
    assert after == ["after: []"]


def test_a_failed_call_shows_what_it_printed_before_the_error(capfd):
    import os

    from starpose import _quiet

    with pytest.raises(RuntimeError, match="converter broke"):
        with _quiet.captured("the converter"):
            os.write(2, b"native detail of the failure\n")
            raise RuntimeError("converter broke")
    err = capfd.readouterr().err
    assert "output of the converter" in err and "native detail of the failure" in err


def test_cli_warnings_ours_in_one_line_others_held(capsys):
    import warnings

    from starpose import _quiet

    with warnings.catch_warnings():  # restores warnings.showwarning on exit
        warnings.simplefilter("always")
        _quiet.install_cli_warnings()
        warnings.warn("interim weights", _quiet.StarPoseWarning)
        warnings.warn("a library's deprecation", DeprecationWarning)
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["warning: interim weights"]
    assert "a library's deprecation" in _quiet.held_output()
