"""Writing files so that no reader ever sees half of one, and hashing them.

Every file the package writes (checkpoints, weights, results, reports, exported artifacts'
manifests, benchmark results) goes through :func:`atomic_write`: the bytes go to a uniquely named
temporary file in the target's folder, which is renamed onto the target only once the write has
finished. A failed or interrupted write leaves the previous file (if any) untouched and no
temporary file behind. Torch-free, so the artifact runners and ``bench``'s workers can use it.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "file_sha256",
           "file_mode_for", "remove_stale_temps", "stale_temps_line", "IMAGE_EXTS", "VIDEO_EXTS"]

# The photo and video file suffixes ``predict`` reads (here, torch-free, so the command line can check
# its arguments before anything heavy is imported).
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def atomic_write(path: str | Path, write: Callable[[str], Any], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` (its folder is created).

    ``tmp_path`` is a fresh file beside ``path`` (same file system, so the rename is atomic),
    named ``.<name>.<random><suffix>``: two writers of one target never share a temporary file. (Give a
    ``suffix`` for writers that pick the format by extension, e.g. ``.mp4`` for OpenCV's VideoWriter.) The
    file keeps the permissions of the one it replaces; a new one gets the umask's, as ``open()`` would give.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = file_mode_for(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        # After the write: some writers replace the file they are given with one of their own (safetensors'
        # save_file renames its own 0600 temporary file onto it), so a mode set before would be lost.
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _process_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


# Read once, at import (the main thread, before any writer runs): os.umask cannot be read without setting it.
_UMASK = _process_umask()


def file_mode_for(path: Path) -> int:
    """The permissions ``path`` gets: those of the file it replaces, else what ``open()`` would give a
    new file under the process umask. (mkstemp makes its file 0600, which a rename would carry over:
    an exported model or a weights file that only its owner can read.)"""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def remove_stale_temps(folder: str | Path, names: list[str] | tuple[str, ...]) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left in ``folder`` for the targets ``names``
    when its process was killed mid-write (SIGKILL, out of memory, power loss: no ``except`` runs).

    Call it only where no other process can be writing those targets at that moment (a training
    run's main process as it starts). Returns the files removed.
    """
    folder = Path(folder)
    removed = []
    for name in names:
        for tmp in folder.glob(f".{glob.escape(name)}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def stale_temps_line(removed: list[Path], folder: str | Path) -> str:
    """The log line for what :func:`remove_stale_temps` removed from ``folder`` (train and qat print it)."""
    return (f"removed {len(removed)} temporary file(s) a killed run left in {folder}: "
            + ", ".join(p.name for p in removed))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = None) -> Path:
    """``obj`` as JSON (a newline at the end when indented). The text is made before the file is
    touched, so an object that cannot be written as JSON leaves nothing behind."""
    text = json.dumps(obj, indent=indent)
    return atomic_write_text(path, text + "\n" if indent is not None else text)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_markers(text: str, begin: str, end: str, where: str | Path) -> None:
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise SystemExit(f"{where}: expected one '{begin}' line followed by one '{end}' line")


def replace_between_markers(text: str, begin: str, end: str, new: str, where: str | Path) -> str:
    """``text`` with what stands between the ``begin`` and ``end`` marker lines replaced by ``new``
    (a generated table in a Markdown file); a clear error naming ``where`` unless each marker is
    there once, in that order."""
    _check_markers(text, begin, end, where)
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{new}\n{end}{tail}"


def between_markers(text: str, begin: str, end: str, where: str | Path) -> str:
    """What stands between the marker lines of ``text`` (see :func:`replace_between_markers`)."""
    _check_markers(text, begin, end, where)
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def rewrite_between_markers(path: str | Path, begin: str, end: str, new: str) -> bool:
    """Replace what stands between the marker lines of the file ``path`` by ``new`` (temp file, then
    rename); False, and the file untouched, where it already reads so."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    updated = replace_between_markers(text, begin, end, new, path)
    if updated == text:
        return False
    atomic_write_text(path, updated)
    return True
