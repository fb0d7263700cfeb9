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

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from phantominator.ct_shepp_logan import ct_modified_shepp_logan_params_3d
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import DSfloat

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

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
DX_FOR_PRESENTATION_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")
US_MULTIFRAME_STORAGE = UID("1.2.840.10008.5.1.4.1.1.3.1")

MANUFACTURER = "Vesalius synthetic"
SOFTWARE_VERSION = "vesalius-demo-1"

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


@dataclass(frozen=True)
class DemoPatient:
    """Demographics for the Patient module (PS3.3 C.7.1.1)."""

    patient_name: str = "DEMO^ALICE"
    patient_id: str = "VES-DEMO-0001"
    issuer: str = "VESALIUS-DEMO"
    birth_date: str = "19700101"
    sex: str = "F"


DEFAULT_PATIENT = DemoPatient()

_FloatArray = npt.NDArray[np.float32]


def _uid(seed: str, patient: DemoPatient, *parts: str) -> UID:
    return generate_uid(entropy_srcs=[seed, patient.issuer, patient.patient_id, *parts])


def _rng(seed: str, patient: DemoPatient, *parts: str) -> np.random.Generator:
    text = "|".join([seed, patient.patient_id, *parts]).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text).digest()[:16], "big"))


def _ds(value: float) -> DSfloat:
    """A Decimal String that fits the VR's 16 characters (PS3.5 6.2)."""
    return DSfloat(value, auto_format=True)


def _age(birth_date: str, on_date: str) -> str:
    """Patient's Age (AS) at ``on_date``, e.g. ``056Y``."""
    years = int(on_date[:4]) - int(birth_date[:4])
    if on_date[4:] < birth_date[4:]:
        years -= 1
    return f"{max(years, 0):03d}Y"


def _new_dataset(sop_class: UID, sop_instance: UID) -> Dataset:
    """SOP Common module (PS3.3 C.12.1) and File Meta Information (PS3.10 7.1)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    return ds


def _set_patient_and_study(
    ds: Dataset,
    patient: DemoPatient,
    *,
    study_uid: UID,
    study_date: str,
    study_time: str,
    accession: str,
    study_description: str,
    study_id: str,
) -> None:
    """Patient (C.7.1.1), General Study (C.7.2.1) and Patient Study (C.7.2.2) modules."""
    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = patient.issuer
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.ReferringPhysicianName = ""
    ds.StudyID = study_id
    ds.AccessionNumber = accession
    ds.StudyDescription = study_description
    ds.PatientAge = _age(patient.birth_date, study_date)


def _set_series_and_equipment(
    ds: Dataset,
    *,
    modality: str,
    series_uid: UID,
    series_number: int,
    series_description: str,
    date: str,
    time: str,
    model: str,
) -> None:
    """General Series (C.7.3.1) and General Equipment (C.7.5.1) modules."""
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.SeriesDate = date
    ds.SeriesTime = time
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = model
    ds.InstitutionName = "Vesalius Demo Hospital"
    ds.StationName = "SYNTH01"
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = SOFTWARE_VERSION


def _set_content_time(ds: Dataset, date: str, time: str) -> None:
    """General Image (C.7.6.1) and General Acquisition (C.7.10.1) date/time attributes."""
    ds.ContentDate = date
    ds.ContentTime = time
    ds.AcquisitionDate = date
    ds.AcquisitionTime = time
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time


def _set_grayscale_pixels(
    ds: Dataset, pixels: npt.NDArray[np.uint8] | npt.NDArray[np.uint16], bits_stored: int
) -> None:
    """Image Pixel module (C.7.6.3) for unsigned MONOCHROME2 data."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[-2]), int(pixels.shape[-1])
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


# --------------------------------------------------------------------------- CT


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


def _chest_image(rng: np.random.Generator, size: int) -> npt.NDArray[np.uint16]:
    """A PA chest radiograph look-alike: attenuation summed from shapes, then 12 bits.

    Bright where attenuation is high (bone, heart, mediastinum), dark in the
    lungs, as a For Presentation MONOCHROME2 image is displayed.
    """
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    x, y = c[np.newaxis, :], c[:, np.newaxis]
    att = np.zeros((size, size), dtype=np.float32)

    def ellipse(cx: float, cy: float, ax: float, ay: float) -> npt.NDArray[np.bool_]:
        return np.asarray(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0)

    # Trunk with shoulders and soft-tissue thickness rising towards the centre.
    trunk = ellipse(0.0, 0.15, 0.86, 1.05)
    att += np.where(trunk, 1.0 - 0.35 * np.abs(x) ** 2, 0.0).astype(np.float32)
    att += 0.4 * ellipse(0.0, -0.92, 0.95, 0.25)
    # Lungs (air): two tall ellipses, cut from below by the diaphragm domes.
    for side in (-1.0, 1.0):
        lung = ellipse(side * 0.36, -0.05, 0.27, 0.62)
        dome = y > 0.42 - 0.25 * ((x - side * 0.36) / 0.27) ** 2 + (0.06 if side > 0 else 0.0)
        att -= 0.75 * (lung & ~dome)
    # Heart and mediastinum: over the spine, bulging to the patient's left (image right).
    att += 0.55 * ellipse(0.12, 0.22, 0.30, 0.24)
    att += 0.35 * (np.abs(x) < 0.1) * (y < 0.3) * (y > -0.9)
    # Spine: a vertical band of vertebrae separated by discs.
    vertebrae = (np.abs(x) < 0.07) & (np.cos(y * 40.0) > -0.6)
    att += 0.45 * vertebrae
    # Posterior ribs: arcs descending from the spine; clavicles across the top.
    for side in (-1.0, 1.0):
        for k in range(10):
            y0 = -0.62 + 0.115 * k
            arc = y0 + 0.22 * (np.abs(x) - 0.45) ** 2 + 0.12 * np.abs(x)
            band = (np.abs(y - arc) < 0.022) & (side * x > 0.06) & (side * x < 0.75)
            att += 0.3 * band
        clavicle = np.abs(y - (-0.7 + 0.15 * (side * x - 0.35) ** 2)) < 0.025
        att += 0.4 * (clavicle & (side * x > 0.05) & (side * x < 0.6))
    att = np.clip(att, 0.0, None) + rng.normal(0.0, 0.012, att.shape).astype(np.float32)
    signal = 1.0 - np.exp(-1.6 * np.clip(att, 0.0, None))
    pixels: npt.NDArray[np.uint16] = np.clip(np.rint(signal * 4095.0 * 1.05), 0, 4095).astype(
        np.uint16
    )
    return pixels


def chest_xray(
    patient: DemoPatient,
    *,
    study_date: str = "20261015",
    study_time: str = "091000",
    accession: str = "DEMO0002",
    seed: str = "cxr",
    size: int = 1024,
) -> Dataset:
    """A PA chest radiograph: Digital X-Ray Image Storage - For Presentation.

    Modules of the DX IOD (PS3.3 A.26.1) with the For Presentation
    specialisation (A.26.2): Patient, General Study, Patient Study, General
    Series, DX Series (C.8.11.1), General Equipment, General Image, Image
    Pixel, DX Anatomy Imaged (C.8.11.2), DX Image (C.8.11.3), DX Detector
    (C.8.11.4), DX Positioning (C.8.11.5), X-Ray Acquisition Dose (C.8.7.8),
    VOI LUT (C.11.2), Acquisition Context (C.7.6.14) and SOP Common.
    """
    pixels = _chest_image(_rng(seed, patient, "dx-pixels"), size)
    ds = _new_dataset(DX_FOR_PRESENTATION_STORAGE, _uid(seed, patient, "instance", "dx", "0"))
    _set_patient_and_study(
        ds,
        patient,
        study_uid=_uid(seed, patient, "study"),
        study_date=study_date,
        study_time=study_time,
        accession=accession,
        study_description="XR CHEST PA",
        study_id=accession[-4:],
    )
    _set_series_and_equipment(
        ds,
        modality="DX",
        series_uid=_uid(seed, patient, "series", "dx"),
        series_number=1,
        series_description="CHEST PA",
        date=study_date,
        time=study_time,
        model="Synthetic DR",
    )
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BodyPartExamined = "CHEST"
    _set_content_time(ds, study_date, study_time)
    ds.InstanceNumber = 1
    ds.AcquisitionNumber = 1
    ds.PatientOrientation = ["L", "F"]
    ds.ImageLaterality = "U"
    region = Dataset()
    region.CodeValue = "43799004"
    region.CodingSchemeDesignator = "SCT"
    region.CodeMeaning = "Chest"
    ds.AnatomicRegionSequence = Sequence([region])
    ds.ImageType = ["DERIVED", "PRIMARY"]
    _set_grayscale_pixels(ds, pixels, bits_stored=12)
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    ds.WindowCenterWidthExplanation = "FULL RANGE"
    pitch = 430.0 / size
    ds.DetectorType = "SCINTILLATOR"
    ds.DetectorConfiguration = "AREA"
    ds.DetectorID = "SYNTH-DET-1"
    source_to_detector, source_to_patient = 1760.0, 1600.0
    magnification = source_to_detector / source_to_patient
    ds.ImagerPixelSpacing = [_ds(pitch), _ds(pitch)]
    ds.PixelSpacing = [_ds(pitch / magnification), _ds(pitch / magnification)]
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.PixelSpacingCalibrationDescription = "Corrected for nominal geometric magnification"
    ds.EstimatedRadiographicMagnificationFactor = _ds(magnification)
    ds.DistanceSourceToDetector = _ds(source_to_detector)
    ds.DistanceSourceToPatient = _ds(source_to_patient)
    ds.PositionerType = "COLUMN"
    ds.ViewPosition = "PA"
    view = Dataset()
    view.CodeValue = "399348003"
    view.CodingSchemeDesignator = "SCT"
    view.CodeMeaning = "postero-anterior"
    view.ViewModifierCodeSequence = Sequence()
    ds.ViewCodeSequence = Sequence([view])
    ds.PatientPosition = ""
    ds.KVP = 125
    ds.ExposureTime = 10
    ds.XRayTubeCurrent = 200
    ds.Exposure = 2
    ds.AcquisitionContextSequence = Sequence()
    return ds


# ------------------------------------------------------------------ ultrasound


def _us_frames(
    rng: np.random.Generator, frames: int, rows: int, columns: int
) -> npt.NDArray[np.uint8]:
    """A sector scan of speckled tissue with a beating dark chamber and bright wall."""
    yy, xx = np.mgrid[0:rows, 0:columns].astype(np.float32)
    apex_x, apex_y = columns / 2.0, 20.0
    radius = np.hypot(xx - apex_x, yy - apex_y)
    angle = np.arctan2(xx - apex_x, yy - apex_y)
    sector = (np.abs(angle) < math.radians(40)) & (radius > 20) & (radius < rows - 30)
    depth_gain = np.exp(-radius / (rows * 1.2))
    cx, cy = apex_x, rows * 0.52
    out = np.zeros((frames, rows, columns), dtype=np.uint8)
    for f in range(frames):
        beat = 0.5 * (1.0 + math.cos(2.0 * math.pi * f / frames))  # 1 = diastole
        ax, ay = 70.0 + 25.0 * beat, 95.0 + 20.0 * beat
        r = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
        echo = np.full((rows, columns), 0.45, dtype=np.float32)
        echo = np.where(r < 1.0, 0.06, echo)
        echo = np.where((r >= 1.0) & (r < 1.18), 1.0, echo)
        speckle = rng.rayleigh(0.8, (rows, columns)).astype(np.float32)
        image = echo * speckle * depth_gain * 255.0
        out[f] = np.where(sector, np.clip(image, 0, 255), 0).astype(np.uint8)
    return out


def ultrasound_cine(
    patient: DemoPatient,
    *,
    frames: int = 30,
    study_date: str = "20261020",
    study_time: str = "140000",
    accession: str = "DEMO0003",
    seed: str = "us",
    rows: int = 480,
    columns: int = 640,
) -> Dataset:
    """A cardiac-like B-mode cine loop: Ultrasound Multi-frame Image Storage.

    Modules of the US Multi-frame Image IOD (PS3.3 A.7): Patient, General
    Study, Patient Study, General Series, General Equipment, General Image,
    Image Pixel, Cine (C.7.6.5), Multi-frame (C.7.6.6), US Region Calibration
    (C.8.5.5), US Image (C.8.5.6), VOI LUT and SOP Common. One heartbeat
    over ``frames`` frames at 30 frames/s.
    """
    pixels = _us_frames(_rng(seed, patient, "us-pixels"), frames, rows, columns)
    ds = _new_dataset(US_MULTIFRAME_STORAGE, _uid(seed, patient, "instance", "us", "0"))
    _set_patient_and_study(
        ds,
        patient,
        study_uid=_uid(seed, patient, "study"),
        study_date=study_date,
        study_time=study_time,
        accession=accession,
        study_description="US ECHO TTE",
        study_id=accession[-4:],
    )
    _set_series_and_equipment(
        ds,
        modality="US",
        series_uid=_uid(seed, patient, "series", "us"),
        series_number=1,
        series_description="CINE B-MODE",
        date=study_date,
        time=study_time,
        model="Synthetic US",
    )
    ds.BodyPartExamined = "HEART"
    _set_content_time(ds, study_date, study_time)
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "TTE", "0001"]
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    _set_grayscale_pixels(ds, pixels, bits_stored=8)
    ds.NumberOfFrames = frames
    ds.FrameTime = _ds(1000.0 / 30.0)
    ds.FrameIncrementPointer = Tag("FrameTime")
    ds.CineRate = 30
    ds.RecommendedDisplayFrameRate = 30
    ds.ActualFrameDuration = 33
    ds.PreferredPlaybackSequencing = 0
    ds.StartTrim = 1
    ds.StopTrim = frames
    ds.TransducerData = ["SYNTH-P4"]
    ds.TransducerType = "SECTOR_PHASED"
    ds.ProcessingFunction = "CARDIAC"
    region = Dataset()
    region.RegionSpatialFormat = 1  # 2D
    region.RegionDataType = 1  # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0 = 0
    region.RegionLocationMinY0 = 0
    region.RegionLocationMaxX1 = columns - 1
    region.RegionLocationMaxY1 = rows - 1
    region.PhysicalUnitsXDirection = 3  # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = 0.03
    region.PhysicalDeltaY = 0.03
    region.ReferencePixelX0 = columns // 2
    region.ReferencePixelY0 = 20
    region.TransducerFrequency = 3500
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.WindowCenter = 128
    ds.WindowWidth = 256
    return ds


# ----------------------------------------------------------------- everything


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
