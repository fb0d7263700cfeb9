"""``vesalius import``: files, folders, zip archives and DICOMDIRs into the archive."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from tqdm import tqdm

from vesalius.archive.service import ArchiveService, StoreStatus
from vesalius.core.errors import VesaliusError

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_MAX_ZIP_MEMBER = 4 * 1024**3


@dataclass
class ImportSummary:
    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        c = self.counts
        return (f"stored {c['stored']}, duplicate {c['duplicate']}, replaced {c['replaced']}, "
                f"rejected {c['rejected']}, not DICOM {c['not-dicom']}")


def _is_dicomdir(path: Path) -> bool:
    if path.name.upper() != "DICOMDIR":
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _dicomdir_files(path: Path) -> Iterator[Path]:
    ds = pydicom.dcmread(path)
    for record in ds.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if ref:
            parts = [ref] if isinstance(ref, str) else list(ref)
            candidate = path.parent.joinpath(*[str(p) for p in parts])
            resolved = candidate.resolve()
            if path.parent.resolve() in resolved.parents:
                yield candidate


def _walk(path: Path, tmp: Path) -> Iterator[tuple[str, Path]]:
    """(label, file) pairs; zip members are extracted one at a time into ``tmp``."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and not _is_dicomdir(child):
                yield from _walk(child, tmp)
        return
    if _is_dicomdir(path):
        for ref in _dicomdir_files(path):
            yield str(ref), ref
        return
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or info.file_size > _MAX_ZIP_MEMBER:
                    continue
                target = tmp / "member"
                with archive.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                yield f"{path}!{info.filename}", target
        return
    yield str(path), path


def import_paths(archive: ArchiveService, paths: list[Path], *,
                 progress: bool = True) -> ImportSummary:
    summary = ImportSummary()
    with tempfile.TemporaryDirectory(prefix="vesalius-import-") as tmp_name:
        tmp = Path(tmp_name)
        bar = tqdm(unit="file", disable=not progress, desc="importing")
        for root in paths:
            if not root.exists():
                summary.counts["rejected"] += 1
                summary.rejected.append((str(root), "no such file or directory"))
                continue
            for label, file in _walk(root, tmp):
                bar.update(1)
                try:
                    outcome = archive.store_file(file)
                except VesaliusError as error:
                    kind = "not-dicom" if "not a DICOM" in error.message else "rejected"
                    summary.counts[kind] += 1
                    summary.rejected.append((label, error.message))
                    continue
                except OSError as error:
                    summary.counts["rejected"] += 1
                    summary.rejected.append((label, error.strerror or "read error"))
                    continue
                summary.counts[outcome.status.value] += 1
                if outcome.status is StoreStatus.STORED and outcome.sop_class_uid == (
                        MEDIA_STORAGE_DIRECTORY):
                    continue
        bar.close()
    return summary
