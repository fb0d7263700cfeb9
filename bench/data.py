"""Benchmark data: full-size CT slices from the demo generator, and many tiny instances.

Everything is synthetic and deterministic, generated once into a cache
directory (``$VESALIUS_BENCH_DIR``, default ``/tmp/vesalius-bench``) and reused
by later runs. Each cached batch is a ready-to-send STOW-RS multipart body, so
the client spends almost no CPU while the servers are being measured.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from vesalius.demo.synthetic import CT_IMAGE_STORAGE, DemoPatient, ct_head_series

BOUNDARY = "vesalius-bench-boundary-7f3a"
STOW_CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'

CT_PATIENTS = 4
CT_SLICES_PER_SERIES = 300
"""Each CT patient gets one series of this many 512x512 slices; the first is
also the series used for the WADO-RS metadata, retrieval and frame tests."""

SMALL_ROWS = 16
INSTANCES_PER_SERIES = 10
SERIES_PER_STUDY = 2
STUDIES_PER_PATIENT = 2
INSTANCES_PER_STUDY = INSTANCES_PER_SERIES * SERIES_PER_STUDY
FAMILY_NAMES = 1000
STUDY_DATE_SPAN_DAYS = 1000
RARE_MODALITY_EVERY = 50
"""Every 50th study gets a PT series: a selective ModalitiesInStudy query."""
BASE_DATE = dt.date(2015, 1, 1)


def cache_root() -> Path:
    return Path(os.environ.get("VESALIUS_BENCH_DIR", "/tmp/vesalius-bench"))


@dataclass(frozen=True)
class Batch:
    """One cached STOW-RS request body."""

    path: Path
    instances: int
    nbytes: int
    """Sum of the DICOM part sizes (not counting multipart framing)."""

    def body(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class CtSeries:
    study_uid: str
    series_uid: str
    sop_uids: tuple[str, ...]
    instance_bytes: int


def multipart_body(parts: Iterable[bytes]) -> bytes:
    out = io.BytesIO()
    for part in parts:
        out.write(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        out.write(part)
        out.write(b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


def _encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _write_batches(directory: Path, parts: Iterator[bytes], batch_size: int) -> list[Batch]:
    directory.mkdir(parents=True, exist_ok=True)
    batches: list[Batch] = []
    pending: list[bytes] = []

    def flush() -> None:
        path = directory / f"batch-{len(batches):06d}.bin"
        path.write_bytes(multipart_body(pending))
        batches.append(Batch(path, len(pending), sum(len(p) for p in pending)))
        pending.clear()

    for part in parts:
        pending.append(part)
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return batches


def _load_manifest(directory: Path) -> dict[str, object] | None:
    manifest = directory / "manifest.json"
    if not manifest.exists():
        return None
    data: dict[str, object] = json.loads(manifest.read_text())
    return data


def _batches_from(directory: Path, manifest: dict[str, object]) -> list[Batch]:
    rows = manifest["batches"]
    assert isinstance(rows, list)
    return [Batch(directory / r["file"], int(r["instances"]), int(r["nbytes"])) for r in rows]


def _save_manifest(directory: Path, batches: list[Batch], extra: dict[str, object]) -> None:
    manifest = {
        **extra,
        "batches": [
            {"file": b.path.name, "instances": b.instances, "nbytes": b.nbytes} for b in batches
        ],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))


def ct_dataset(batch_size: int) -> tuple[list[Batch], list[CtSeries]]:
    """``CT_PATIENTS`` series of 512x512 CT slices from :func:`ct_head_series`."""
    directory = cache_root() / f"ct-{CT_PATIENTS}x{CT_SLICES_PER_SERIES}-b{batch_size}"
    manifest = _load_manifest(directory)
    if manifest is None:
        series: list[CtSeries] = []

        def parts() -> Iterator[bytes]:
            for p in range(CT_PATIENTS):
                patient = DemoPatient(
                    patient_name=f"BENCH^CT{p:02d}", patient_id=f"BENCH-CT-{p:04d}"
                )
                sops: list[str] = []
                size = 0
                study = series_uid = ""
                for i, ds in enumerate(
                    ct_head_series(
                        patient, slices=CT_SLICES_PER_SERIES, accession=f"BCT{p:04d}"
                    )
                ):
                    study, series_uid = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
                    sops.append(str(ds.SOPInstanceUID))
                    raw = _encode(ds)
                    size = len(raw)
                    if i % 50 == 0:
                        print(f"  generating CT patient {p + 1}/{CT_PATIENTS} slice {i}",
                              file=sys.stderr, flush=True)
                    yield raw
                series.append(CtSeries(study, series_uid, tuple(sops), size))

        batches = _write_batches(directory, parts(), batch_size)
        _save_manifest(directory, batches, {"series": [s.__dict__ for s in series]})
        manifest = _load_manifest(directory)
        assert manifest is not None
    rows = manifest["series"]
    assert isinstance(rows, list)
    series_list = [
        CtSeries(r["study_uid"], r["series_uid"], tuple(r["sop_uids"]), r["instance_bytes"])
        for r in rows
    ]
    return _batches_from(directory, manifest), series_list


def _uid(*parts: object) -> UID:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return UID(f"2.25.{int.from_bytes(digest[:16], 'big')}")


@dataclass(frozen=True)
class SmallLayout:
    """Where the n-th tiny instance belongs; also what the QIDO queries expect."""

    @staticmethod
    def study_of(index: int) -> int:
        return index // INSTANCES_PER_STUDY

    @staticmethod
    def patient_of(study: int) -> int:
        return study // STUDIES_PER_PATIENT

    @staticmethod
    def patient_id(patient: int) -> str:
        return f"BENCH-SM-{patient:07d}"

    @staticmethod
    def family_name(patient: int) -> str:
        return f"NAME{patient % FAMILY_NAMES:03d}"

    @staticmethod
    def study_date(study: int) -> dt.date:
        return BASE_DATE + dt.timedelta(days=study % STUDY_DATE_SPAN_DAYS)

    @staticmethod
    def series_modality(study: int, series: int) -> str:
        if series == 1 and study % RARE_MODALITY_EVERY == 0:
            return "PT"
        return "CT" if series == 0 else "MR"


def _small_instances(start: int, stop: int) -> Iterator[bytes]:
    """Tiny 16x16 secondary-capture-like CT Image instances ``start..stop-1``."""
    layout = SmallLayout
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.ReferringPhysicianName = ""
    ds.Manufacturer = "Vesalius bench"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = SMALL_ROWS
    ds.Columns = SMALL_ROWS
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.KVP = 120
    pixels = np.arange(SMALL_ROWS * SMALL_ROWS, dtype=np.uint16).reshape(SMALL_ROWS, SMALL_ROWS)
    for index in range(start, stop):
        study = layout.study_of(index)
        patient = layout.patient_of(study)
        in_study = index % INSTANCES_PER_STUDY
        series = in_study // INSTANCES_PER_SERIES
        number = in_study % INSTANCES_PER_SERIES + 1
        sop = _uid("bench-small-sop", index)
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPInstanceUID = sop
        ds.PatientName = f"{layout.family_name(patient)}^P{patient}"
        ds.PatientID = layout.patient_id(patient)
        ds.StudyInstanceUID = _uid("bench-small-study", study)
        ds.StudyDate = layout.study_date(study).strftime("%Y%m%d")
        ds.StudyTime = "120000"
        ds.AccessionNumber = f"BSM{study:08d}"
        ds.StudyID = str(study % 100000)
        ds.StudyDescription = f"BENCH STUDY {study}"
        ds.SeriesInstanceUID = _uid("bench-small-series", study, series)
        ds.Modality = layout.series_modality(study, series)
        ds.SeriesNumber = series + 1
        ds.InstanceNumber = number
        ds.PixelData = (pixels + (index % 1000)).tobytes()
        yield _encode(ds)


def small_dataset(total: int, batch_size: int) -> list[Batch]:
    """``total`` tiny instances as cached STOW-RS bodies of ``batch_size`` each."""
    directory = cache_root() / f"small-{SMALL_ROWS}px-b{batch_size}"
    manifest = _load_manifest(directory)
    batches = _batches_from(directory, manifest) if manifest else []
    have = sum(b.instances for b in batches)
    if batches and batches[-1].instances != batch_size:
        # An incomplete tail batch cannot be extended in place: rebuild it.
        have -= batches.pop().instances
    if have < total:
        print(f"  generating {total - have} small instances", file=sys.stderr, flush=True)
        new = _write_batches(directory / "tmp", _small_instances(have, total), batch_size)
        for offset, batch in enumerate(new):
            target = directory / f"batch-{len(batches) + offset:06d}.bin"
            batch.path.replace(target)
            new[offset] = Batch(target, batch.instances, batch.nbytes)
        batches.extend(new)
        _save_manifest(directory, batches, {})
    selected: list[Batch] = []
    count = 0
    for batch in batches:
        if count >= total:
            break
        selected.append(batch)
        count += batch.instances
    if count != total:
        raise ValueError(f"scale {total} is not a multiple of the batch size {batch_size}")
    return selected


def verify_instance(raw: bytes) -> str:
    """The SOP Instance UID of a retrieved part (raises if it is not DICOM)."""
    ds = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True)
    return str(ds.SOPInstanceUID)


def split_multipart(body: bytes) -> list[bytes]:
    """The DICOM parts of a body written by :func:`multipart_body`."""
    delimiter = f"--{BOUNDARY}".encode()
    parts: list[bytes] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.split(b"\r\n\r\n", 1)[1][:-2])
    return parts


@dataclass(frozen=True)
class DimseSeries:
    """A CT series held in memory as pydicom Datasets, for the DIMSE measurements."""

    study_uid: str
    series_uid: str
    patient_id: str
    datasets: tuple[Dataset, ...]
    nbytes: int
    """Sum of the encoded instance sizes (as cached, with preamble and file meta)."""


def dimse_series(ct_batches: list[Batch], count: int) -> list[DimseSeries]:
    """``count`` copies of the cached CT series with new patient, study, series and SOP UIDs.

    They come from the same demo-generator slices as the STOW data, read once into
    memory, so neither file reading nor encoding on disk is measured; the new UIDs
    keep them distinct from what the DICOMweb phases stored.
    """
    raws: list[bytes] = []
    for batch in ct_batches:
        raws.extend(split_multipart(batch.body()))
        if len(raws) >= count * CT_SLICES_PER_SERIES:
            break
    out: list[DimseSeries] = []
    for s in range(count):
        patient_id = f"BENCH-DIMSE-{s:04d}"
        study_uid, series_uid = _uid("bench-dimse-study", s), _uid("bench-dimse-series", s)
        datasets: list[Dataset] = []
        nbytes = 0
        for i, raw in enumerate(raws[s * CT_SLICES_PER_SERIES:(s + 1) * CT_SLICES_PER_SERIES]):
            ds = pydicom.dcmread(io.BytesIO(raw))
            sop = _uid("bench-dimse-sop", s, i)
            ds.file_meta.MediaStorageSOPInstanceUID = sop
            ds.SOPInstanceUID = sop
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = _uid("bench-dimse-frame", s)
            ds.PatientID = patient_id
            ds.PatientName = f"BENCH^DIMSE{s:02d}"
            ds.AccessionNumber = f"BDM{s:04d}"
            datasets.append(ds)
            nbytes += len(raw)
        if len(datasets) != CT_SLICES_PER_SERIES:
            raise ValueError(f"only {len(datasets)} cached CT slices for DIMSE series {s}")
        out.append(DimseSeries(study_uid, series_uid, patient_id, tuple(datasets), nbytes))
    return out
