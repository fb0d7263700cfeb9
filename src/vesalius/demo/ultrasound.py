"""Ultrasound cine: Ultrasound Multi-frame Image IOD (PS3.3 A.7)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from vesalius.demo.common import (
    US_MULTIFRAME_STORAGE,
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
