"""CT head series: a 3-D Shepp-Logan phantom with a contrast-filled vessel (PS3.3 A.3)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from phantominator.ct_shepp_logan import ct_modified_shepp_logan_params_3d
from pydicom.dataset import Dataset

from vesalius.demo.common import (
    CT_IMAGE_STORAGE,
    DemoPatient,
    _ds,
    _FloatArray,
    _new_dataset,
    _rng,
    _set_content_time,
    _set_grayscale_pixels,
    _set_patient_and_study,
    _set_series_and_equipment,
    _uid,
)

CT_FIELD_OF_VIEW_MM = 256.0
"""Reconstruction diameter: pixel spacing is this divided by rows/columns."""

HEAD_SCALE_MM = 120.0
"""Millimetres per unit of Shepp-Logan's normalised [-1, 1] x and y coordinates."""
HEAD_SCALE_Z_MM = 150.0
"""Millimetres per normalised z unit: taller than wide, so a 200 mm series
stays inside the skull caps and an axial MIP shows the vessel, not bone."""

# HU added by each of phantominator's ten 3-D ellipsoids (same order as its
# parameter table): skull over air, brain inside it, then ventricles and small
# lesions. Shepp-Logan is additive, so nested ellipsoids sum.
_ELLIPSOID_HU = np.array([2000.0, -960.0, -32.0, -32.0, 12.0, 18.0, 22.0, 22.0, 25.0, -15.0])
_AIR_HU = -1000.0
_CT_NOISE_HU = 4.0
_CT_RESCALE_INTERCEPT = -1024
_CT_MAX_STORED = 4095  # 12 bits stored

PRIOR_CT_SHIFT_MM = (1.5, -2.0, 3.0)
"""Anatomy displacement of the prior CT in :func:`demo_studies` (patient LPS, mm)."""
PRIOR_CT_SCALE = 0.98
"""Anatomy scale of the prior CT in :func:`demo_studies`."""


@dataclass(frozen=True)
class VesselGeometry:
    """A straight contrast-filled vessel: a cylinder around a segment.

    Coordinates are patient LPS millimetres (PS3.3 C.7.6.2.1.1) of a series
    generated with no anatomy shift and scale 1; a shifted/scaled series
    transforms them as ``shift + scale * point``.
    """

    start_mm: tuple[float, float, float]
    end_mm: tuple[float, float, float]
    radius_mm: float
    hu: float

    def point_at_z(self, z_mm: float) -> tuple[float, float, float] | None:
        """Where the vessel axis crosses the plane ``z = z_mm``; None outside the segment."""
        (x0, y0, z0), (x1, y1, z1) = self.start_mm, self.end_mm
        t = (z_mm - z0) / (z1 - z0)
        if not 0.0 <= t <= 1.0:
            return None
        return (x0 + t * (x1 - x0), y0 + t * (y1 - y0), z_mm)


VESSEL = VesselGeometry(
    start_mm=(-30.0, -35.0, -70.0), end_mm=(30.0, 35.0, 70.0), radius_mm=2.0, hu=350.0
)
"""The bright oblique vessel inside the brain of every synthetic CT head.

At coarse pixel spacing it is drawn at least 0.75 pixel in radius, so every
slice it crosses holds at least the pixel nearest to its axis.
"""


class _HeadPhantom:
    """Per-slice evaluation of the 3-D Shepp-Logan head plus :data:`VESSEL`.

    phantominator's own 3-D call fills the whole volume at once (4+ GB at
    512x512x200); here each ellipsoid is cut by one plane and drawn only in
    its bounding box, which keeps memory at one slice and time in milliseconds.
    """

    def __init__(
        self,
        *,
        rows: int,
        columns: int,
        spacing: float,
        shift: tuple[float, float, float],
        scale: float,
    ) -> None:
        self.rows, self.columns, self.spacing = rows, columns, spacing
        self.shift = np.asarray(shift, dtype=np.float64)
        self.scale = scale
        self.x_mm = (np.arange(columns) - (columns - 1) / 2.0) * spacing
        self.y_mm = (np.arange(rows) - (rows - 1) / 2.0) * spacing
        unit = HEAD_SCALE_MM * scale
        self.u = (self.x_mm - shift[0]) / unit
        self.v = (self.y_mm - shift[1]) / unit
        self.unit_z = HEAD_SCALE_Z_MM * scale
        self.params = np.asarray(ct_modified_shepp_logan_params_3d(), dtype=np.float64)
        start = self.shift + scale * np.asarray(VESSEL.start_mm)
        end = self.shift + scale * np.asarray(VESSEL.end_mm)
        self.vessel_start = start
        self.vessel_length = float(np.linalg.norm(end - start))
        self.vessel_dir = (end - start) / self.vessel_length
        self.vessel_radius = max(VESSEL.radius_mm * scale, 0.75 * spacing)

    def _index_range(self, axis: npt.NDArray[np.floating[Any]], lo: float, hi: float) -> slice:
        return slice(int(np.searchsorted(axis, lo)), int(np.searchsorted(axis, hi, "right")))

    def slice_hu(self, z_mm: float) -> _FloatArray:
        image = np.full((self.rows, self.columns), _AIR_HU, dtype=np.float32)
        w = (z_mm - self.shift[2]) / self.unit_z
        for hu, a, b, c, xc, yc, zc, theta in zip(
            _ELLIPSOID_HU, *self.params[:, 1:].T, strict=True
        ):
            t = 1.0 - ((w - zc) / c) ** 2
            if t <= 0.0:
                continue
            ra, rb = a * math.sqrt(t), b * math.sqrt(t)
            cos, sin = math.cos(theta), math.sin(theta)
            half_u = math.hypot(ra * cos, rb * sin)
            half_v = math.hypot(ra * sin, rb * cos)
            cols = self._index_range(self.u, xc - half_u, xc + half_u)
            rows = self._index_range(self.v, yc - half_v, yc + half_v)
            du = (self.u[cols] - xc)[np.newaxis, :]
            dv = (self.v[rows] - yc)[:, np.newaxis]
            inside = (du * cos + dv * sin) ** 2 / ra**2 + (du * sin - dv * cos) ** 2 / rb**2 <= 1.0
            image[rows, cols][inside] += np.float32(hu)
        self._draw_vessel(image, z_mm)
        return image

    def _draw_vessel(self, image: _FloatArray, z_mm: float) -> None:
        d = self.vessel_dir
        t_cross = (z_mm - self.vessel_start[2]) / d[2]
        margin = self.vessel_radius / abs(d[2])
        if not -margin <= t_cross <= self.vessel_length + margin:
            return
        centre = self.vessel_start + t_cross * d
        reach = margin + self.spacing
        cols = self._index_range(self.x_mm, centre[0] - reach, centre[0] + reach)
        rows = self._index_range(self.y_mm, centre[1] - reach, centre[1] + reach)
        px = (self.x_mm[cols] - self.vessel_start[0])[np.newaxis, :]
        py = (self.y_mm[rows] - self.vessel_start[1])[:, np.newaxis]
        pz = z_mm - self.vessel_start[2]
        along = px * d[0] + py * d[1] + pz * d[2]
        dist2 = px**2 + py**2 + pz**2 - along**2
        inside = (dist2 <= self.vessel_radius**2) & (along >= 0.0) & (along <= self.vessel_length)
        image[rows, cols][inside] = np.float32(VESSEL.hu)


def ct_head_series(
    patient: DemoPatient,
    *,
    slices: int = 200,
    rows: int = 512,
    columns: int = 512,
    study_date: str = "20261101",
    study_time: str = "101500",
    accession: str = "DEMO0001",
    study_description: str = "CT HEAD WITHOUT CONTRAST",
    seed: str = "ct-current",
    slice_spacing_mm: float = 1.0,
    anatomy_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    anatomy_scale: float = 1.0,
) -> Iterator[Dataset]:
    """Yield an axial CT head series, one CT Image Storage instance per slice.

    Modules of the CT Image IOD (PS3.3 A.3): Patient, General Study, Patient
    Study, General Series, Frame of Reference (C.7.4.1), General Equipment,
    General Acquisition, General Image, Image Plane (C.7.6.2), Image Pixel,
    CT Image (C.8.2.1), VOI LUT (C.11.2) and SOP Common.

    Pixel spacing is :data:`CT_FIELD_OF_VIEW_MM` / ``rows`` (0.5 mm at 512);
    slices are centred on z = 0 and step by ``slice_spacing_mm`` from feet to
    head. ``anatomy_shift_mm`` / ``anatomy_scale`` move the phantom (and the
    vessel) to make a prior look slightly different. Slices are computed
    lazily, so a 200-slice series never holds more than one image.
    """
    if rows < 1 or columns < 1 or slices < 1:
        raise ValueError("rows, columns and slices must be positive")
    spacing = CT_FIELD_OF_VIEW_MM / max(rows, columns)
    phantom = _HeadPhantom(
        rows=rows, columns=columns, spacing=spacing, shift=anatomy_shift_mm, scale=anatomy_scale
    )
    study_uid = _uid(seed, patient, "study")
    series_uid = _uid(seed, patient, "series", "ct")
    frame_uid = _uid(seed, patient, "frame-of-reference")
    first_x, first_y = float(phantom.x_mm[0]), float(phantom.y_mm[0])
    for index in range(slices):
        z = (index - (slices - 1) / 2.0) * slice_spacing_mm
        hu = phantom.slice_hu(z)
        hu += (
            _rng(seed, patient, "ct-noise", str(index))
            .normal(0.0, _CT_NOISE_HU, hu.shape)
            .astype(np.float32)
        )
        stored = np.clip(np.rint(hu) - _CT_RESCALE_INTERCEPT, 0, _CT_MAX_STORED).astype(np.uint16)

        ds = _new_dataset(CT_IMAGE_STORAGE, _uid(seed, patient, "instance", "ct", str(index)))
        _set_patient_and_study(
            ds,
            patient,
            study_uid=study_uid,
            study_date=study_date,
            study_time=study_time,
            accession=accession,
            study_description=study_description,
            study_id=accession[-4:],
        )
        _set_series_and_equipment(
            ds,
            modality="CT",
            series_uid=series_uid,
            series_number=2,
            series_description="HEAD AXIAL 1.0",
            date=study_date,
            time=study_time,
            model="Synthetic CT",
        )
        ds.PatientPosition = "HFS"
        ds.BodyPartExamined = "HEAD"
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        _set_content_time(ds, study_date, study_time)
        ds.InstanceNumber = index + 1
        ds.AcquisitionNumber = 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PatientOrientation = ""  # Type 2C, empty: the Image Plane module is present
        ds.PixelSpacing = [_ds(spacing), _ds(spacing)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [_ds(first_x), _ds(first_y), _ds(z)]
        ds.SliceThickness = _ds(slice_spacing_mm)
        ds.SpacingBetweenSlices = _ds(slice_spacing_mm)
        ds.SliceLocation = _ds(z)
        _set_grayscale_pixels(ds, stored, bits_stored=12)
        ds.RescaleIntercept = _CT_RESCALE_INTERCEPT
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 80
        ds.WindowCenterWidthExplanation = "BRAIN"
        ds.KVP = 120
        ds.XRayTubeCurrent = 250
        ds.ExposureTime = 1000
        ds.Exposure = 250
        ds.ConvolutionKernel = "STANDARD"
        ds.DataCollectionDiameter = 500
        ds.ReconstructionDiameter = CT_FIELD_OF_VIEW_MM
        ds.GantryDetectorTilt = 0
        ds.TableHeight = 150
        ds.RotationDirection = "CW"
        ds.SingleCollimationWidth = _ds(slice_spacing_mm / 2)
        ds.TotalCollimationWidth = _ds(slice_spacing_mm * 32)
        ds.FilterType = "BODY"
        yield ds


# ----------------------------------------------------------------- chest X-ray
