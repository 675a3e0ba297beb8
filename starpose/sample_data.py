"""Real photos a command can fall back on, found without importing torch.

- :data:`SAMPLES_DIR`: the sample photos that ship with the package (``predict --sample``), with
  ``people.json``, a COCO-format file of their person boxes (no keypoints), so that ``verify``
  can cut real person crops on any machine.
- :func:`shared_fixture`: the project's tiny human-labelled COCO / CrowdPose / MPII slices. They
  are not copied into the repository or the wheel; a source checkout reads them in place from
  the shared data folder beside it (``../shared/fixtures``), and where that folder is absent (a
  fresh clone, an installed wheel) the answer is None and the caller says what to pass instead.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLES_DIR", "SAMPLE_PEOPLE", "SHARED_DIR", "sample_photos", "shared_fixture"]

SAMPLES_DIR = Path(__file__).resolve().parent / "assets" / "samples"
SAMPLE_PEOPLE = SAMPLES_DIR / "people.json"
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"  # beside a source checkout
_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def sample_photos() -> list[Path]:
    """The packaged sample photos, sorted by name."""
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in _PHOTO_SUFFIXES)


def shared_fixture(relative: str) -> Path | None:
    """``../shared/fixtures/<relative>`` beside a source checkout, or None where it is absent."""
    path = SHARED_DIR / "fixtures" / relative
    return path if path.exists() else None
