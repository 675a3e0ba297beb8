"""``verify``: is this artifact (or every artifact of an export directory) what its manifest and
metadata say, and does it compute what the eager model computes?

Per artifact, in order (a failed step stops the steps that depend on it):

1. integrity: size and sha256 of the artifact and its sidecar against ``manifest.json``;
2. metadata: the sidecar and the copy embedded in the artifact parse, pass the schema checks,
   agree with each other and name the right format;
3. structure: the runtime loads the artifact and its declared inputs/outputs match the metadata
   (so metadata that says 14 keypoints on an artifact that outputs 17 is caught);
4. parity: run in the real runtime on real person crops against the eager reference
   (:mod:`mobile_export.parity`); where the runtime cannot run here (Core ML on Linux) this step
   is reported as skipped, with the reason.

A damaged artifact fails its step with a message naming the file, never with a traceback: every
reader turns what its library raises into :class:`~mobile_export.base.ArtifactLoadError`, and
anything else an artifact's check raises becomes a FAIL line of that artifact. What the runtimes
print while they load and run (native log lines included) is captured and shown under a failed
artifact, or as it happens with ``--verbose`` (:mod:`starpose._quiet`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starpose._quiet import captured
from starpose.fileio import atomic_write_json

from .base import ArtifactLoadError, MissingExtraError, ObservedIO, RuntimeUnavailable
from .formats import FORMATS, exporter_for
from .manifest import MANIFEST_NAME, ManifestError, check_entry, read_manifest
from .metadata import MetadataError, read_metadata_file, sidecar_path
from .parity import Crop, ParityReport, coco_crops, default_crop_source, measure_parity
from .source import WeightsError, reference_model

__all__ = ["Check", "ArtifactResult", "VerifyReport", "verify", "expected_io", "compare_io"]


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not applicable / skipped here, with the reason in ``detail``
    detail: str = ""


@dataclass
class ArtifactResult:
    name: str
    format: str
    checks: list[Check] = field(default_factory=list)
    parity: ParityReport | None = None
    library_output: str = ""  # what the libraries printed while a failed check ran

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks) and (self.parity is None or self.parity.passed)

    @property
    def status(self) -> str:
        """FAIL (a check failed), SKIP (nothing failed, but the artifact could not be loaded or run
        here, so its outputs were not checked) or PASS."""
        if not self.ok:
            return "FAIL"
        if any(c.ok is None and c.name in ("load", "run") for c in self.checks):
            return "SKIP"
        return "PASS"

    def add(self, name: str, ok: bool | None, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok is not False


@dataclass
class VerifyReport:
    root: Path
    results: list[ArtifactResult]
    problems: list[Check] = field(default_factory=list)  # directory-level
    crops: Path | None = None  # the COCO json the parity crops come from

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results) and all(c.ok is not False for c in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.root),
            "ok": self.ok,
            "crops": str(self.crops) if self.crops else None,
            "problems": [asdict(c) for c in self.problems],
            "artifacts": [
                {"name": r.name, "format": r.format, "ok": r.ok, "status": r.status, "checks": [asdict(c) for c in r.checks],
                 "parity": r.parity.to_dict() if r.parity else None}
                for r in self.results
            ],
        }

    def write_json(self, path: Path) -> None:
        atomic_write_json(path, self.to_dict(), indent=2)

    def render(self) -> str:
        lines = [f"verify {self.root}" + (f" (parity crops: {self.crops})" if self.crops else "")]
        for c in self.problems:
            lines.append(f"  {_mark(c.ok)} {c.name}: {c.detail}")
        for r in self.results:
            lines.append(f"\n{r.name} [{r.format}] — {r.status}")
            for c in r.checks:
                lines.append(f"  {_mark(c.ok)} {c.name}" + (f": {c.detail}" if c.detail else ""))
            if r.parity is not None:
                lines.append("  " + r.parity.table().replace("\n", "\n  "))
            if r.library_output and not r.ok:
                tail = r.library_output.rstrip().splitlines()[-_OUTPUT_LINES:]
                lines.append(f"  what the libraries printed (last {len(tail)} lines):")
                lines += [f"    | {t}" for t in tail]
        n_bad = sum(not r.ok for r in self.results)
        n_skip = sum(r.status == "SKIP" for r in self.results)
        lines.append(f"\n{len(self.results)} artifact(s), {n_bad} failed" + (f", {n_skip} not run here" if n_skip else "")
                     if self.results else "\nno artifacts found")
        return "\n".join(lines)


_OUTPUT_LINES = 12


def _mark(ok: bool | None) -> str:
    return "skip" if ok is None else ("ok  " if ok else "FAIL")


def verify(
    path: Path,
    *,
    weights: str | Path | None = None,
    coco_json: Path | None = None,
    max_crops: int | None = None,
    image_dir: Path | None = None,
) -> VerifyReport:
    """Verify one artifact or every artifact of a directory. Parity crops come from ``coco_json``
    (its images next to it, or in ``image_dir``), by default from :func:`default_crop_source`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such artifact or directory")
    is_artifact = exporter_for(path) is not None
    root = path.parent if is_artifact else path
    if not is_artifact and not path.is_dir():
        raise ValueError(f"{path}: not an artifact of a known format ({_suffixes()}) nor a directory")
    crops_json = Path(coco_json) if coco_json else default_crop_source()
    report = VerifyReport(root=path, results=[], crops=crops_json)
    try:
        manifest = read_manifest(root)
    except ManifestError as e:
        manifest = None
        report.problems.append(Check("manifest", False, str(e)))
    entries = (manifest or {}).get("artifacts", {})
    if is_artifact:
        names = [path.name]
    else:
        on_disk = sorted(p.name for p in root.iterdir() if exporter_for(p) and not p.name.startswith("."))
        listed = [n for n, e in entries.items() if e.get("role") == "model"]
        names = sorted(set(on_disk) | set(listed))
        if manifest is None and not any(c.name == "manifest" for c in report.problems):
            report.problems.append(Check("manifest", None, f"no {MANIFEST_NAME} in {root}: integrity not checked"))
    crops_cache: dict[str, list[Crop]] = {}
    with captured("importing the runtimes"):  # their import notices are no artifact's failure
        for exporter in {exporter_for(root / name) for name in names} - {None}:
            try:
                exporter.check_available()
            except MissingExtraError:
                pass  # reported per artifact below
    for name in names:
        with captured(f"checking {name}") as cap:
            try:
                result = _verify_artifact(root / name, manifest, weights=weights, coco_json=crops_json,
                                          image_dir=image_dir, max_crops=max_crops, crops_cache=crops_cache)
            except Exception as e:  # noqa: BLE001 - one artifact's surprise must not end the others' checks
                result = ArtifactResult(name, getattr(exporter_for(root / name), "name", "unknown"))
                result.add("check", False, f"{root / name}: {type(e).__name__}: {e}")
        if not result.ok:
            result.library_output = cap.text
        report.results.append(result)
    return report


def _suffixes() -> str:
    return ", ".join(s for e in FORMATS.values() for s in e.suffixes)


def check_integrity(path: Path, manifest: dict[str, Any] | None, result: ArtifactResult) -> bool:
    """The integrity step of verify (artifact and sidecar against the manifest), added to
    ``result``; False when the artifact must not be loaded."""
    if manifest is None:
        result.add("integrity", None, f"no {MANIFEST_NAME} next to it")
        return True
    entries = manifest["artifacts"]
    problems = []
    for name in (path.name, sidecar_path(path).name):
        if name in entries:
            problems += check_entry(path.parent, name, entries[name])
        elif (path.parent / name).exists():
            problems.append(f"{name}: not listed in {MANIFEST_NAME}")
    if not path.exists():
        result.add("integrity", False, "artifact missing")
        return False
    if not result.add("integrity", not problems, "; ".join(map(str, problems)) or "size and sha256 match the manifest"):
        # A damaged file is not handed to a native runtime (some abort the process on bad bytes).
        result.add("load", None, "not loaded: the files differ from the manifest; re-export them")
        return False
    return True


def _verify_artifact(
    path: Path,
    manifest: dict[str, Any] | None,
    *,
    weights: str | Path | None,
    coco_json: Path,
    max_crops: int | None,
    crops_cache: dict[str, list[Crop]],
    image_dir: Path | None = None,
) -> ArtifactResult:
    exporter = exporter_for(path)
    assert exporter is not None
    result = ArtifactResult(path.name, exporter.name)
    from .detector import is_detector_artifact, verify_detector_artifact

    if is_detector_artifact(path):  # the person detector: its own metadata; parity on real frames
        verify_detector_artifact(path, manifest, result)
        return result
    side = sidecar_path(path)

    # 1. integrity
    if not check_integrity(path, manifest, result):
        return result

    # 2. metadata
    try:
        exporter.check_available()
    except MissingExtraError as e:
        result.add("runtime", False, str(e))
        return result
    meta: dict[str, Any] | None = None
    try:
        sidecar = read_metadata_file(side) if side.exists() else None
        embedded = exporter.read_embedded_metadata(path)
    except (MetadataError, ArtifactLoadError) as e:
        result.add("metadata", False, str(e))
        return result
    if sidecar is None and embedded is None:
        result.add("metadata", False, f"neither a sidecar {side.name} nor embedded metadata")
        return result
    meta = embedded if embedded is not None else sidecar
    if sidecar is not None and embedded is not None and sidecar != embedded:
        diff = sorted(k for k in set(sidecar) | set(embedded) if sidecar.get(k) != embedded.get(k))
        result.add("metadata", False, f"sidecar {side.name} differs from the embedded metadata in: {', '.join(diff)}")
        return result
    if meta["format"] != exporter.name:
        result.add("metadata", False, f"format is {meta['format']!r} but the file is a {exporter.name} artifact")
        return result
    where = " + ".join(w for w, d in (("sidecar", sidecar), ("embedded", embedded)) if d is not None)
    result.add("metadata", True, f"{where}; {meta['precision']}, {meta['backend']}, "
                                 f"{meta['spec']['num_keypoints']} keypoints, weights {meta['model']['weights']}")

    # 3. structure
    try:
        observed = exporter.inspect(path)
    except ArtifactLoadError as e:
        result.add("load", False, str(e))
        return result
    mismatches = compare_io(observed, expected_io(meta))
    if not result.add("inputs/outputs", not mismatches, "; ".join(mismatches) or "match the metadata"):
        return result
    if exporter.name == "executorch":
        from .executorch import delegate_ids

        ids = delegate_ids(path)
        want = {"xnnpack": "XnnpackBackend", "coreml": "CoreMLBackend"}.get(meta["backend"])
        result.add("delegate", want in ids, f"delegates {sorted(set(ids))}, metadata backend {meta['backend']}")

    # 4. parity
    try:
        runner = exporter.open_runner(path, meta)
    except RuntimeUnavailable as e:
        result.add("run", None, str(e))
        return result
    except ArtifactLoadError as e:
        result.add("run", False, str(e))
        return result
    try:
        model = reference_model(meta, weights)
    except WeightsError as e:
        result.add("reference", False, str(e))
        return result
    json_path = Path(coco_json)
    key = f"{json_path}|{image_dir}|{meta['spec']['input_size']}|{meta['spec']['bbox_padding']}"
    try:
        if key not in crops_cache:
            from .metadata import spec_from_metadata

            crops_cache[key] = coco_crops(json_path, spec_from_metadata(meta), image_dir=image_dir, limit=max_crops)
        result.parity = measure_parity(runner, model, meta, crops_cache[key], artifact=path.name)
    except (ArtifactLoadError, ValueError) as e:
        result.add("parity", False, str(e))
    return result


def expected_io(meta: dict[str, Any]) -> ObservedIO:
    """Inputs and outputs an artifact must declare, from its metadata."""
    from .base import TensorInfo

    inp = meta["input"]
    h, w = inp["height"], inp["width"]
    shape = (1, h, w, 3) if inp["layout"] == "NHWC" else (1, 3, h, w)
    dtype = "image" if inp.get("type") == "image" else inp["dtype"]
    inputs = [TensorInfo(inp["name"], shape, dtype)]
    if meta["affine_input"]["present"]:
        inputs.append(TensorInfo(meta["affine_input"]["name"], (1, 2, 3), "float32"))
    outputs = [TensorInfo(n, tuple(o["shape"]), "float32") for n, o in meta["outputs"].items()]
    return ObservedIO(tuple(inputs), tuple(outputs))


def compare_io(observed: ObservedIO, expected: ObservedIO) -> list[str]:
    """Human-readable differences (empty when they agree). Matched by name where the format
    keeps names, else by position."""
    problems: list[str] = []
    for kind in ("inputs", "outputs"):
        got, want = getattr(observed, kind), getattr(expected, kind)
        if len(got) != len(want):
            problems.append(f"the artifact has {len(got)} {kind} "
                            f"({', '.join(f'{t.name}{list(t.shape)}' for t in got)}), the metadata describes {len(want)} "
                            f"({', '.join(f'{t.name}{list(t.shape)}' for t in want)})")
            continue
        if observed.names_known:
            by_name = {t.name: t for t in got}
            pairs = [(by_name.get(t.name), t) for t in want]
        else:
            pairs = list(zip(got, want))
        for g, t in pairs:
            if g is None:
                problems.append(f"{kind[:-1]} '{t.name}' described in the metadata is not in the artifact "
                                f"(it has {', '.join(x.name for x in got)})")
            elif tuple(g.shape) != tuple(t.shape):
                problems.append(f"{kind[:-1]} '{t.name}': the artifact has shape {list(g.shape)}, "
                                f"the metadata says {list(t.shape)}")
            elif g.dtype != t.dtype:
                problems.append(f"{kind[:-1]} '{t.name}': the artifact has dtype {g.dtype}, the metadata says {t.dtype}")
    return problems
