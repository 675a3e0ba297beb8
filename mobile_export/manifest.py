"""``manifest.json``: every artifact of an export directory with its size and sha256.

The manifest is how ``verify`` notices a file that changed after export (one flipped byte is
enough). A directory artifact (``.mlpackage``) is listed with each of its files and a tree hash:
the sha256 of the sorted ``relative/path<TAB>size<TAB>sha256`` lines. Several exports may write
into one directory; each one merges its entries into the manifest (written to a temp file, then
renamed).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starpose.fileio import atomic_write_json, file_sha256

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "ManifestError",
    "IntegrityProblem",
    "describe_path",
    "file_sha256",
    "read_manifest",
    "update_manifest",
    "check_entry",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """A manifest that cannot be read."""


@dataclass(frozen=True)
class IntegrityProblem:
    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"


def describe_path(path: Path) -> dict[str, Any]:
    """Size and sha256 of a file, or of every file under a directory plus a tree hash."""
    path = Path(path)
    if path.is_file():
        return {"kind": "file", "size": path.stat().st_size, "sha256": file_sha256(path)}
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or directory")
    files: dict[str, Any] = {}
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        rel = p.relative_to(path).as_posix()
        files[rel] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
    return {
        "kind": "directory",
        "size": sum(f["size"] for f in files.values()),
        "sha256": _tree_hash(files),
        "files": files,
    }


def _tree_hash(files: dict[str, Any]) -> str:
    lines = "".join(f"{rel}\t{f['size']}\t{f['sha256']}\n" for rel, f in sorted(files.items()))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``out_dir``, or None where there is none."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: not a readable manifest ({e})") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("artifacts"), dict):
        raise ManifestError(f"{path}: expected an object with an 'artifacts' object")
    if doc.get("manifest_version") != MANIFEST_VERSION:
        raise ManifestError(f"{path}: manifest_version {doc.get('manifest_version')!r} is not {MANIFEST_VERSION}")
    return doc


def update_manifest(out_dir: Path, entries: dict[str, dict[str, Any]]) -> Path:
    """Add or replace ``entries`` (artifact name → extra fields such as format, precision,
    metadata name) with their current size and sha256, and drop entries whose file is gone."""
    from starpose import __version__

    out_dir = Path(out_dir)
    doc = read_manifest(out_dir) or {"manifest_version": MANIFEST_VERSION, "artifacts": {}}
    artifacts: dict[str, Any] = {
        name: e for name, e in doc["artifacts"].items() if (out_dir / name).exists() and name not in entries
    }
    for name, extra in entries.items():
        artifacts[name] = {**extra, **describe_path(out_dir / name)}
    doc = {
        "manifest_version": MANIFEST_VERSION,
        "package_version": __version__,
        "artifacts": dict(sorted(artifacts.items())),
    }
    path = out_dir / MANIFEST_NAME
    return atomic_write_json(path, doc, indent=2)


def check_entry(out_dir: Path, name: str, entry: dict[str, Any]) -> list[IntegrityProblem]:
    """Compare one manifest entry with what is on disk now."""
    path = Path(out_dir) / name
    if not path.exists():
        return [IntegrityProblem(name, "listed in the manifest but missing")]
    try:
        now = describe_path(path)
    except OSError as e:
        return [IntegrityProblem(name, f"cannot be read ({e})")]
    if now["kind"] != entry.get("kind", "file"):
        return [IntegrityProblem(name, f"is a {now['kind']} but the manifest lists a {entry.get('kind')}")]
    if now["kind"] == "file":
        return _compare(name, entry, now)
    problems: list[IntegrityProblem] = []
    listed = entry.get("files", {})
    for rel in sorted(set(listed) | set(now["files"])):
        if rel not in now["files"]:
            problems.append(IntegrityProblem(f"{name}/{rel}", "listed in the manifest but missing"))
        elif rel not in listed:
            problems.append(IntegrityProblem(f"{name}/{rel}", "not in the manifest (added after export)"))
        else:
            problems += _compare(f"{name}/{rel}", listed[rel], now["files"][rel])
    if not problems and now["sha256"] != entry.get("sha256"):
        problems.append(IntegrityProblem(name, "tree hash differs from the manifest"))
    return problems


def _compare(name: str, listed: dict[str, Any], now: dict[str, Any]) -> list[IntegrityProblem]:
    if now["size"] != listed.get("size"):
        return [IntegrityProblem(name, f"size {now['size']} bytes, manifest says {listed.get('size')}: "
                                       "the file changed after export")]
    if now["sha256"] != listed.get("sha256"):
        return [IntegrityProblem(name, f"sha256 {now['sha256'][:16]}… differs from the manifest's "
                                       f"{str(listed.get('sha256'))[:16]}…: the file changed after export (corrupt?)")]
    return []
