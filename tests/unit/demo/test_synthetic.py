"""Synthetic demo data: valid IODs, correct geometry, expected HU, deterministic bytes."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.dataset import Dataset

from conftest import require_tool
from vesalius.demo.synthetic import (
    CT_IMAGE_STORAGE,
    DEFAULT_PATIENT,
    DX_FOR_PRESENTATION_STORAGE,
    PRIOR_CT_SCALE,
    PRIOR_CT_SHIFT_MM,
    US_MULTIFRAME_STORAGE,
    VESSEL,
    chest_xray,
    ct_head_series,
    demo_studies,
    ultrasound_cine,
    write_demo,
)

SLICES, SIZE = 8, 64
DCIODVFY = Path("/usr/bin/dciodvfy")


def small_ct(**kwargs: object) -> list[Dataset]:
    return list(ct_head_series(DEFAULT_PATIENT, slices=SLICES, rows=SIZE, columns=SIZE, **kwargs))  # type: ignore[arg-type]


def hu(ds: Dataset) -> npt.NDArray[np.float64]:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def pixel_of(ds: Dataset, x_mm: float, y_mm: float) -> tuple[int, int]:
    """(row, column) of the pixel centre nearest to patient (x, y) for an axial slice."""
    origin_x, origin_y = float(ds.ImagePositionPatient[0]), float(ds.ImagePositionPatient[1])
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    return round((y_mm - origin_y) / row_spacing), round((x_mm - origin_x) / column_spacing)


def test_ct_series_is_ct_image_storage_with_patient_and_study_identity() -> None:
    series = small_ct()
    assert len(series) == SLICES
    first = series[0]
    assert first.SOPClassUID == CT_IMAGE_STORAGE
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert first.Modality == "CT"
    assert first.Manufacturer == "Vesalius synthetic"
    assert first.PatientID == "VES-DEMO-0001"
    assert first.IssuerOfPatientID == "VESALIUS-DEMO"
    assert (first.Rows, first.Columns) == (SIZE, SIZE)
    assert first.PhotometricInterpretation == "MONOCHROME2"
    assert (float(first.WindowCenter), float(first.WindowWidth)) == (40.0, 80.0)
    assert [int(ds.InstanceNumber) for ds in series] == list(range(1, SLICES + 1))
    assert len({ds.StudyInstanceUID for ds in series}) == 1
    assert len({ds.SeriesInstanceUID for ds in series}) == 1


def test_ct_geometry_is_consistent() -> None:
    series = small_ct()
    assert len({ds.FrameOfReferenceUID for ds in series}) == 1
    assert len({ds.SOPInstanceUID for ds in series}) == SLICES
    orientation = np.array([float(v) for v in series[0].ImageOrientationPatient])
    assert orientation.tolist() == [1, 0, 0, 0, 1, 0]
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in series])
    steps = np.diff(positions, axis=0)
    spacing = float(series[0].SpacingBetweenSlices)
    assert np.allclose(steps, spacing * normal)
    assert float(series[0].SliceThickness) == spacing
    for ds, position in zip(series, positions, strict=True):
        assert float(ds.SliceLocation) == pytest.approx(float(position @ normal))
        assert [float(v) for v in ds.ImageOrientationPatient] == orientation.tolist()
        assert [float(v) for v in ds.PixelSpacing] == [float(v) for v in series[0].PixelSpacing]
    # The field of view is centred on the patient origin.
    row_spacing = float(series[0].PixelSpacing[0])
    assert positions[0][0] == pytest.approx(-(SIZE - 1) / 2 * row_spacing)


def test_ct_hounsfield_units_of_air_skull_brain_and_vessel() -> None:
    middle = small_ct()[SLICES // 2]
    image = hu(middle)
    assert -1050 < image[0, 0] < -950  # corner: air
    assert image.max() > 900  # skull
    centre = image[SIZE // 2 - 4 : SIZE // 2 + 4, SIZE // 2 - 4 : SIZE // 2 + 4]
    assert np.median(centre) == pytest.approx(40, abs=30)  # brain parenchyma
    crossing = VESSEL.point_at_z(float(middle.SliceLocation))
    assert crossing is not None
    row, column = pixel_of(middle, crossing[0], crossing[1])
    assert 300 <= image[row, column] <= 400


def test_mip_along_z_shows_the_vessel() -> None:
    series = small_ct(slice_spacing_mm=10.0)  # 8 slices over 70 mm: a long oblique line
    volume = np.stack([hu(ds) for ds in series])
    mip = volume.max(axis=0)
    visited = set()
    for ds in series:
        crossing = VESSEL.point_at_z(float(ds.SliceLocation))
        assert crossing is not None
        visited.add(pixel_of(ds, crossing[0], crossing[1]))
    assert len(visited) >= 5
    for row, column in visited:
        assert mip[row, column] > 250
    # The line is bright only in the MIP, not in every slice.
    assert np.count_nonzero(mip > 250) > np.count_nonzero(volume[0] > 250)


def test_ct_output_is_deterministic_per_seed() -> None:
    first = [to_bytes(ds) for ds in small_ct()]
    second = [to_bytes(ds) for ds in small_ct()]
    assert first == second


def test_prior_ct_has_new_uids_and_slightly_different_anatomy() -> None:
    current = small_ct()
    prior = small_ct(
        study_date="20251101",
        accession="DEMO0000",
        seed="ct-prior",
        anatomy_shift_mm=PRIOR_CT_SHIFT_MM,
        anatomy_scale=PRIOR_CT_SCALE,
    )
    assert prior[0].StudyInstanceUID != current[0].StudyInstanceUID
    assert prior[0].SeriesInstanceUID != current[0].SeriesInstanceUID
    assert prior[0].FrameOfReferenceUID != current[0].FrameOfReferenceUID
    assert not {ds.SOPInstanceUID for ds in prior} & {ds.SOPInstanceUID for ds in current}
    assert prior[0].StudyDate == "20251101"
    assert prior[0].AccessionNumber == "DEMO0000"
    assert prior[0].PatientID == current[0].PatientID
    changed = np.abs(hu(prior[4]) - hu(current[4])) > 500  # the skull moved
    assert 0 < np.count_nonzero(changed) < SIZE * SIZE // 4


def test_chest_xray_is_dx_for_presentation() -> None:
    ds = chest_xray(DEFAULT_PATIENT)
    assert ds.SOPClassUID == DX_FOR_PRESENTATION_STORAGE
    assert ds.Modality == "DX"
    assert ds.PresentationIntentType == "FOR PRESENTATION"
    assert (ds.BitsAllocated, ds.BitsStored) == (16, 12)
    pixels = ds.pixel_array
    assert pixels.shape == (1024, 1024)
    assert int(pixels.max()) <= 4095
    lung = pixels[400:500, 300:360].mean()
    spine = pixels[400:500, 500:524].mean()
    assert lung < spine
    assert to_bytes(ds) == to_bytes(chest_xray(DEFAULT_PATIENT))


def test_ultrasound_cine_is_multiframe_with_cine_timing() -> None:
    ds = ultrasound_cine(DEFAULT_PATIENT, frames=6)
    assert ds.SOPClassUID == US_MULTIFRAME_STORAGE
    assert ds.Modality == "US"
    assert int(ds.NumberOfFrames) == 6
    assert ds.FrameIncrementPointer == pydicom.tag.Tag("FrameTime")
    assert float(ds.FrameTime) == pytest.approx(1000 / 30, abs=0.01)
    frames = ds.pixel_array
    assert frames.shape == (6, 480, 640)
    assert not np.array_equal(frames[0], frames[3])  # it beats
    assert to_bytes(ds) == to_bytes(ultrasound_cine(DEFAULT_PATIENT, frames=6))


def test_demo_studies_cover_four_studies_of_one_patient() -> None:
    datasets = list(demo_studies(ct_slices=3))
    assert len(datasets) == 3 + 3 + 1 + 1
    assert len({ds.StudyInstanceUID for ds in datasets}) == 4
    assert {ds.PatientID for ds in datasets} == {DEFAULT_PATIENT.patient_id}
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)


def test_write_demo_writes_readable_part10_files(tmp_path: Path) -> None:
    paths = write_demo(tmp_path, ct_slices=2)
    assert len(paths) == 6
    for path in paths:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    again = write_demo(tmp_path / "again", ct_slices=2)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]


@pytest.mark.parametrize(
    "make",
    [
        lambda: small_ct()[3],
        lambda: chest_xray(DEFAULT_PATIENT),
        lambda: ultrasound_cine(DEFAULT_PATIENT, frames=4),
    ],
    ids=["ct", "dx", "us"],
)
def test_dciodvfy_finds_no_errors(make: object, tmp_path: Path) -> None:
    tool = require_tool(str(DCIODVFY))
    path = tmp_path / "instance.dcm"
    ds = make()  # type: ignore[operator]
    ds.save_as(path, enforce_file_format=True)
    result = subprocess.run([tool, path], capture_output=True, text=True, check=False)
    report = result.stdout + result.stderr
    errors = [line for line in report.splitlines() if "Error" in line]
    assert errors == [], report
