"""Chest radiograph: Digital X-Ray Image IOD, For Presentation (PS3.3 A.26)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from vesalius.demo.common import (
    DX_FOR_PRESENTATION_STORAGE,
    DemoPatient,
    _ds,
    _new_dataset,
    _rng,
    _set_content_time,
    _set_grayscale_pixels,
    _set_patient_and_study,
    _set_series_and_equipment,
    _uid,
)


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
