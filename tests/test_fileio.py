"""starpose.fileio: the one place files are written atomically and hashed."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from pathlib import Path

from starpose.fileio import (atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text, between_markers,
                             file_mode_for, file_sha256, remove_stale_temps, replace_between_markers, rewrite_between_markers)


def test_writes_and_creates_the_folder(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    assert atomic_write_json(target, {"x": [1, 2]}, indent=2) == target
    assert json.loads(target.read_text()) == {"x": [1, 2]}
    assert target.read_text().endswith("\n")
    atomic_write_json(target, [3])
    assert target.read_text() == "[3]"  # compact form: no indent, no newline
    assert atomic_write_text(tmp_path / "t.md", "héllo\n").read_text(encoding="utf-8") == "héllo\n"
    assert atomic_write_bytes(tmp_path / "b.bin", b"\x00\xff").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.bin", "t.md"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_unserialisable_json_touches_nothing(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("[1]")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert target.read_text() == "[1]"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_temp_files_are_unique_per_write(tmp_path):
    target = tmp_path / "x.txt"
    seen = []
    atomic_write(target, lambda tmp: (seen.append(tmp), open(tmp, "w").write("1")))
    atomic_write(target, lambda tmp: (seen.append(tmp), open(tmp, "w").write("2")))
    assert seen[0] != seen[1]
    assert all(p.startswith(str(tmp_path / ".x.txt.")) and p.endswith(".tmp") for p in seen)
    assert target.read_text() == "2"


def test_a_killed_writers_temp_files_are_removed_by_target_name(tmp_path):
    """A SIGKILLed write leaves atomic_write's temporary file (no except clause runs); remove_stale_temps
    removes those of the named targets only, names with glob characters included."""
    import os
    import signal

    child = ("import os, signal, sys\nfrom starpose.fileio import atomic_write\n"
             "atomic_write(sys.argv[1], lambda tmp: os.kill(os.getpid(), signal.SIGKILL))")
    r = subprocess.run([sys.executable, "-c", child, str(tmp_path / "last.pt")])
    assert r.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".last.pt.") and left[0].endswith(".tmp")
    (tmp_path / ".w[1].pt.abc.tmp").write_bytes(b"")  # target 'w[1].pt'
    (tmp_path / ".notes.txt.abc.tmp").write_bytes(b"")  # not a named target: kept
    (tmp_path / "last.pt").write_bytes(b"intact")
    removed = remove_stale_temps(tmp_path, ["last.pt", "w[1].pt", "best.safetensors"])
    assert sorted(p.name for p in removed) == sorted([left[0], ".w[1].pt.abc.tmp"])
    assert sorted(os.listdir(tmp_path)) == [".notes.txt.abc.tmp", "last.pt"]
    assert remove_stale_temps(tmp_path, ["last.pt"]) == []


def test_written_files_get_the_umask_s_permissions_or_keep_their_own(tmp_path):
    """mkstemp makes its file 0600; the renamed result must not be readable by its owner only (a weights
    file or an exported model others in the group copy into an app). A new file gets what open() would
    give under the umask (run in a child with umask 022 and 027); a replaced file keeps its mode."""
    import stat

    child = ("import os, sys\nos.umask(int(sys.argv[2], 8))\nfrom starpose.fileio import atomic_write_bytes\n"
             "atomic_write_bytes(sys.argv[1], b'x')\nopen(sys.argv[1] + '.plain', 'wb').close()")
    for umask, want in (("022", 0o644), ("027", 0o640)):
        target = tmp_path / f"u{umask}.bin"
        subprocess.run([sys.executable, "-c", child, str(target), umask], check=True)
        assert stat.S_IMODE(target.stat().st_mode) == want
        assert stat.S_IMODE(Path(str(target) + ".plain").stat().st_mode) == want  # what open() gives
    kept = tmp_path / "script.sh"
    kept.write_text("old")
    kept.chmod(0o751)
    assert file_mode_for(kept) == 0o751
    atomic_write_text(kept, "new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o751 and kept.read_text() == "new"


def test_writers_that_replace_their_temporary_file_get_the_same_permissions(tmp_path):
    """safetensors' save_file writes its own temporary file (0600) and renames it onto the path it is given:
    the weights file, a checkpoint's best/final weights and package.py's output went out 0600 until the
    mode was set after the write."""
    import os
    import stat
    import tempfile

    import torch

    from starpose.train.checkpoint import save_weights

    mode = file_mode_for(tmp_path / "new.bin")  # what this process's umask gives a new file
    if mode == 0o600:
        pytest.skip("this process's umask (077) gives new files 0600, mkstemp's mode: nothing to tell apart")

    def replacing_writer(tmp: str) -> None:
        fd, own = tempfile.mkstemp(dir=tmp_path)
        os.write(fd, b"data")
        os.close(fd)
        os.replace(own, tmp)

    target = atomic_write(tmp_path / "replaced.bin", replacing_writer)
    assert stat.S_IMODE(target.stat().st_mode) == mode and target.read_bytes() == b"data"
    weights = save_weights(tmp_path / "w.safetensors", torch.nn.Linear(2, 2))
    assert stat.S_IMODE(weights.stat().st_mode) == mode


def test_file_sha256_matches_hashlib_across_chunks(tmp_path):
    data = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB chunk
    p = tmp_path / "d.bin"
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()
    from mobile_export.manifest import file_sha256 as manifest_sha
    from starpose.models.weights import file_sha256 as weights_sha
    assert manifest_sha is file_sha256 and weights_sha is file_sha256


def test_importing_it_does_not_import_torch():
    code = "import sys, starpose.fileio, mobile_export.manifest; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_generated_tables_are_replaced_between_their_markers_only(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("# head\n<!-- b -->\nold\n<!-- e -->\ntail\n", encoding="utf-8")
    assert between_markers(doc.read_text(), "<!-- b -->", "<!-- e -->", doc) == "old"
    assert rewrite_between_markers(doc, "<!-- b -->", "<!-- e -->", "| new |") is True
    assert doc.read_text() == "# head\n<!-- b -->\n| new |\n<!-- e -->\ntail\n"
    assert rewrite_between_markers(doc, "<!-- b -->", "<!-- e -->", "| new |") is False  # already current
    for bad in ("<!-- e -->\n<!-- b -->\n", "<!-- b -->\n<!-- b -->\n<!-- e -->\n", "no markers\n"):
        doc.write_text(bad)
        with pytest.raises(SystemExit, match=r"README\.md: expected one '<!-- b -->' line followed by one '<!-- e -->'"):
            rewrite_between_markers(doc, "<!-- b -->", "<!-- e -->", "| new |")
        assert doc.read_text() == bad
    with pytest.raises(SystemExit, match="where.md: expected one"):
        replace_between_markers("x", "<!-- b -->", "<!-- e -->", "y", "where.md")
