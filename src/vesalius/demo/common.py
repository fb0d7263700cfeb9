"""Shared pieces of the synthetic demo data: patient, UIDs, common modules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import DSfloat

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
DX_FOR_PRESENTATION_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")
US_MULTIFRAME_STORAGE = UID("1.2.840.10008.5.1.4.1.1.3.1")

MANUFACTURER = "Vesalius synthetic"
SOFTWARE_VERSION = "vesalius-demo-1"

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
