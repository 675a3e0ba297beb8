"""Command output: what the user sees, and what the libraries underneath print.

**Captured library output.** :func:`captured` runs a library call (an exporter's conversion, a
runtime loading an artifact, a heavy import) with everything it prints sent to a temporary file:
Python's ``sys.stdout``/``sys.stderr`` (progress bars, ``print``, warnings, logging) and the
process's file descriptors 1 and 2 (C/C++ log lines that native code writes straight to them).
The text is dropped when the call succeeds and written to stderr, before the exception, when it
fails. With :func:`set_verbose` (the CLI's ``--verbose``, or ``STARPOSE_VERBOSE=1``) nothing
is captured. Our own progress lines and bars inside a captured call go out through
:func:`uncaptured` / :func:`outside`.

**Our own warnings** (:class:`StarPoseWarning`, e.g. interim packaged weights) are shown by the
CLI as one ``warning: ...`` line (:func:`install_cli_warnings`); a library's warning raised
outside any captured call is held and shown only with ``--verbose`` or when the command fails.

**Known-harmless messages**, dropped always: the torchao wheel ships CUDA-only kernels
(``_C_mxfp8``, ``_C_cutlass_*``) and tries to load them on every import; with a CPU build of torch
that fails and torchao logs "Failed to load ... Could not load this library" as a warning, twice,
in every command that exports or quantizes. Nothing in this project uses those kernels. The filter
drops exactly those two records (and only with a CPU build of torch); every other torchao message,
including a failure to load any other extension, still comes through.

torchao 0.18 also registers its ``KernelPreference`` enum as a pytree constant, which torch 2.13
answers with a deprecation warning on every import (torchao's to fix, not ours). That one
record is dropped too. And torch 2.13 deprecates its own ``LeafSpec`` class with a
FutureWarning that fires whenever one is constructed, which ``copy.deepcopy`` of an exported
program does from inside torch and ExecuTorch (a dozen lines per export); that warning
(exactly that message) is ignored.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from typing import Any, Callable, Iterator, TextIO

__all__ = ["CudaOnlyTorchaoKernels", "TorchaoEnumConstant", "install", "StarPoseWarning", "Captured", "captured",
           "uncaptured", "outside", "say", "set_verbose", "verbose", "install_cli_warnings", "held_output"]

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


# ------------------------------------------------------------------------------ command output


class StarPoseWarning(UserWarning):
    """A warning of this project meant for the user (shown by the CLI as one line)."""


_state: dict[str, Any] = {"verbose": os.environ.get("STARPOSE_VERBOSE", "") not in ("", "0"), "active": None}
_held: list[str] = []


def set_verbose(on: bool) -> None:
    """``True``: libraries print as they like (nothing captured, nothing held)."""
    _state["verbose"] = bool(on)


def verbose() -> bool:
    return bool(_state["verbose"])


def clear_held() -> None:
    """Forget the held-back warnings (each CLI command starts with none)."""
    _held.clear()


def held_output() -> str:
    """Library warnings raised outside a captured call (not shown unless the command fails)."""
    return "".join(_held)


class Captured:
    """One capture: ``text`` is what the library printed (complete after the ``with`` block)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.text = ""
        self._file: Any = None
        self._stream: TextIO | None = None
        self._saved_fds: dict[int, int] = {}
        self._saved_streams: tuple[Any, Any] = (None, None)

    # the terminal ↔ the capture file; called on entry, around uncaptured(), and on exit
    def _redirect(self) -> None:
        _flush(sys.stdout, sys.stderr)
        for fd in self._saved_fds:
            os.dup2(self._file.fileno(), fd)
        sys.stdout = sys.stderr = self._stream

    def _restore(self) -> None:
        _flush(self._stream)
        for fd, saved in self._saved_fds.items():
            os.dup2(saved, fd)
        sys.stdout, sys.stderr = self._saved_streams

    def __enter__(self) -> "Captured":
        self._file = tempfile.TemporaryFile()
        self._stream = io.TextIOWrapper(io.FileIO(os.dup(self._file.fileno()), "w"), encoding="utf-8",
                                        errors="replace", write_through=True)
        _flush(sys.stdout, sys.stderr)
        for fd in (1, 2):
            try:
                self._saved_fds[fd] = os.dup(fd)
            except OSError:  # closed descriptor (e.g. a daemon): nothing to capture there
                pass
        self._saved_streams = (sys.stdout, sys.stderr)
        self._redirect()
        _state["active"] = self
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _state["active"] = None
        self._restore()
        for saved in self._saved_fds.values():
            os.close(saved)
        self._stream.close()
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", errors="replace")
        self._file.close()
        if exc_type is not None and exc_type is not GeneratorExit and self.text.strip():
            sys.stderr.write(f"--- output of {self.what} (captured; --verbose shows it as it happens) ---\n"
                             f"{self.text.rstrip()}\n--- end of {self.what} output ---\n")
            _flush(sys.stderr)


def _flush(*streams: Any) -> None:
    for s in streams:
        try:
            s.flush()
        except (AttributeError, ValueError, OSError):
            pass


@contextlib.contextmanager
def captured(what: str) -> Iterator[Captured]:
    """Capture what a library prints while the block runs (see the module docstring). Nested
    calls and ``--verbose`` capture nothing more; the handle's ``text`` is then empty."""
    if _state["verbose"] or _state["active"] is not None:
        yield Captured(what)
        return
    with Captured(what) as cap:
        yield cap


@contextlib.contextmanager
def uncaptured() -> Iterator[None]:
    """Inside a captured call: the real terminal for the duration of the block (our own output)."""
    cap = _state["active"]
    if cap is None:
        yield
        return
    cap._restore()
    _state["active"] = None
    try:
        yield
    finally:
        _flush(sys.stdout, sys.stderr)
        _state["active"] = cap
        cap._redirect()


def outside(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` (e.g. a progress printer) made to reach the terminal even from a captured call."""
    def call(*args: Any, **kwargs: Any) -> Any:
        with uncaptured():
            return callback(*args, **kwargs)

    return call


def say(message: str, *, err: bool = False) -> None:
    """One line of our own output, on the terminal whether or not a library call is captured."""
    with uncaptured():
        stream = sys.stderr if err else sys.stdout
        stream.write(message + "\n")
        _flush(stream)


def install_cli_warnings() -> None:
    """The CLI's warning display: a :class:`StarPoseWarning` as one ``warning: ...`` line on stderr;
    any other warning as Python shows it inside a captured call (so captured) or with
    ``--verbose``, else held for :func:`held_output`."""
    default = warnings.showwarning
    if getattr(default, "_starpose", False):
        return

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        if issubclass(category, StarPoseWarning):
            say(f"warning: {message}", err=True)
        elif _state["verbose"] or _state["active"] is not None or file is not None:
            default(message, category, filename, lineno, file, line)
        else:
            _held.append(warnings.formatwarning(message, category, filename, lineno, line))

    show._starpose = True  # type: ignore[attr-defined]
    warnings.showwarning = show
