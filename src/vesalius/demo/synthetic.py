"""Synthetic demo studies made by our own code: never real patient data.

Every object is generated from geometry and a seed, so the same call produces
the same UIDs and the same bytes (the archive treats same-UID-same-bytes as an
idempotent store). Nothing reads the clock.

* :func:`ct_head_series`: CT Image IOD (PS3.3 A.3), one instance per axial
  slice of a 3-D Shepp-Logan head (ellipsoids from ``phantominator``, evaluated
  slice by slice) in Hounsfield units, plus an oblique contrast-filled vessel
  (:data:`VESSEL`) that a maximum-intensity projection shows as a line.
* :func:`chest_xray`: Digital X-Ray Image IOD, For Presentation (PS3.3 A.26).
* :func:`ultrasound_cine`: Ultrasound Multi-frame Image IOD (PS3.3 A.7).
* :func:`demo_studies` / :func:`write_demo`: all of the above for one patient,
  including a prior CT whose anatomy is slightly shifted and scaled.

PS3.3: https://dicom.nema.org/medical/dicom/current/output/html/part03.html
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydicom.dataset import Dataset

from vesalius.demo.common import (
    CT_IMAGE_STORAGE,
    DEFAULT_PATIENT,
    DX_FOR_PRESENTATION_STORAGE,
    US_MULTIFRAME_STORAGE,
    DemoPatient,
)
from vesalius.demo.ct import (
    CT_FIELD_OF_VIEW_MM,
    HEAD_SCALE_MM,
    HEAD_SCALE_Z_MM,
    PRIOR_CT_SCALE,
    PRIOR_CT_SHIFT_MM,
    VESSEL,
    VesselGeometry,
    ct_head_series,
)
from vesalius.demo.ultrasound import (
    ultrasound_cine,
)
from vesalius.demo.xray import (
    chest_xray,
)

__all__ = [
    "CT_FIELD_OF_VIEW_MM",
    "CT_IMAGE_STORAGE",
    "DEFAULT_PATIENT",
    "DX_FOR_PRESENTATION_STORAGE",
    "HEAD_SCALE_MM",
    "HEAD_SCALE_Z_MM",
    "PRIOR_CT_SCALE",
    "PRIOR_CT_SHIFT_MM",
    "US_MULTIFRAME_STORAGE",
    "VESSEL",
    "DemoPatient",
    "VesselGeometry",
    "chest_xray",
    "ct_head_series",
    "demo_studies",
    "ultrasound_cine",
    "write_demo",
]



def demo_studies(
    patient: DemoPatient = DEFAULT_PATIENT, *, ct_slices: int = 200
) -> Iterator[Dataset]:
    """Every demo instance for ``patient``: current CT, prior CT, chest X-ray, US cine."""
    yield from ct_head_series(patient, slices=ct_slices)
    yield from ct_head_series(
        patient,
        slices=ct_slices,
        study_date="20251101",
        study_time="093000",
        accession="DEMO0000",
        seed="ct-prior",
        anatomy_shift_mm=PRIOR_CT_SHIFT_MM,
        anatomy_scale=PRIOR_CT_SCALE,
    )
    yield chest_xray(patient)
    yield ultrasound_cine(patient)


def write_demo(
    directory: Path, *, ct_slices: int = 200, patient: DemoPatient = DEFAULT_PATIENT
) -> list[Path]:
    """Write :func:`demo_studies` as DICOM files (PS3.10) and return their paths.

    Layout: ``<directory>/<Modality>_<StudyDate>_S<SeriesNumber>/<InstanceNumber>.dcm``.
    """
    paths: list[Path] = []
    for ds in demo_studies(patient, ct_slices=ct_slices):
        folder = directory / f"{ds.Modality}_{ds.StudyDate}_S{ds.SeriesNumber}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{int(ds.InstanceNumber):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
