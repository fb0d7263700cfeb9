"""The archive service: store, find, retrieve and delete DICOM instances.

No protocol knowledge lives here: DICOMweb, DIMSE and the CLI call these
methods and translate :mod:`vesalius.core.errors` into their own statuses.
Write order (ARCHITECTURE: blob first, then index, compensate on failure):
the blob is written atomically, then the index row; if indexing fails the
blob is removed unless something else references it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from vesalius.archive.events import EventBus, InstancesDeleted, InstanceStored
from vesalius.archive.index.reader import Criterion, IndexReader, PatientKeys, attrs_of
from vesalius.archive.index.records import StoredInstance
from vesalius.archive.index.writer import IndexWriter, InstanceExists
from vesalius.archive.ingest import ensure_part10, index_entry, read_dataset
from vesalius.archive.storage.base import BlobStore
from vesalius.archive.storage.fs import file_sha256
from vesalius.config import Settings
from vesalius.core.errors import (
    Conflict,
    DoesNotMatchRequest,
    InvalidInput,
    NotFound,
    StorageFailure,
    TooLarge,
    VesaliusError,
)
from vesalius.core.uids import require_uid
from vesalius.dicom.attributes import (
    DEFAULT_RETURN,
    LEVELS_UP,
    Level,
    resolve_tag,
    tag_hex,
    vr_of,
)
from vesalius.dicom.json_model import BULK_BASE_MARKER, JsonDict, instance_path, make_element
from vesalius.dicom.matching import parse_matcher
from vesalius.dicom.pixels import PixelLayout, decode_frame, layout_from_json, read_frame
from vesalius.dicom.transcode import dataset_to_bytes
from vesalius.security.crypto.errors import TamperedData

log = logging.getLogger(__name__)


class StoreStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REPLACED = "replaced"


@dataclass(frozen=True)
class StoreOutcome:
    status: StoreStatus
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str


@dataclass(frozen=True)
class SearchResult:
    matches: list[JsonDict]
    has_more: bool
    ignored: list[str]


@dataclass(frozen=True)
class Frame:
    data: bytes
    transfer_syntax_uid: str


#: Only instances up to this size are kept parsed in memory between requests.
_CACHE_MAX_INSTANCE_BYTES = 64 * 1024 * 1024

_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}

# Study/series/instance tables keep derived attributes in columns; built per row.
_DERIVED = {
    "ModalitiesInStudy": ("modalities", "CS"),
    "SOPClassesInStudy": ("sop_classes", "UI"),
    "NumberOfStudyRelatedSeries": ("num_series", "IS"),
    "NumberOfStudyRelatedInstances": ("num_instances", "IS"),
    "NumberOfSeriesRelatedInstances": ("num_instances", "IS"),
}


class ArchiveService:
    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore,
        reader: IndexReader,
        writer: IndexWriter,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.reader = reader
        self.writer = writer
        self.events = events or EventBus()
        self.extra_tags = reader.extra_tags
        self._dataset_cache: dict[str, Dataset] = {}
        self._cache_lock = threading.Lock()

    # -- storing -----------------------------------------------------------------
    def store_file(self, path: Path, *, expected_study_uid: str | None = None,
                   expected_sop: tuple[str, str] | None = None, sha256: str | None = None,
                   owned: bool = False) -> StoreOutcome:
        """Store one Part 10 file as received (its data set is never rewritten).

        ``expected_study_uid`` / ``expected_sop`` (SOP Class, SOP Instance UID): what
        the request that carried the file says it is. ``sha256``: the digest when the
        edge computed it while receiving. ``owned``: the file is a temporary the caller
        hands over, so it may be moved, not copied (and, lacking the Part 10 preamble,
        given one).
        """
        size = path.stat().st_size
        if size > self.settings.max_instance_bytes:
            raise TooLarge(f"instance of {size} bytes exceeds the configured maximum")
        if owned and ensure_part10(path):
            sha256 = None
        ds = read_dataset(path)
        if sha256 is None:
            sha256, size = file_sha256(path)
        entry = index_entry(ds, path, blob_key=sha256, sha256=sha256, size=size,
                            extra_tags=self.extra_tags)
        inst = entry.instance
        outcome_ids = (entry.study.study_uid, entry.series.series_uid, inst.sop_uid,
                       inst.sop_class_uid)
        if expected_study_uid is not None and entry.study.study_uid != expected_study_uid:
            raise DoesNotMatchRequest(
                "StudyInstanceUID does not match the study of the request")
        if expected_sop is not None:
            for keyword, requested, actual in (
                    ("SOPClassUID", expected_sop[0], inst.sop_class_uid),
                    ("SOPInstanceUID", expected_sop[1], inst.sop_uid)):
                if requested and requested != actual:
                    raise DoesNotMatchRequest(f"data set {keyword} differs from the request")
        existing = self.reader.find_instance(inst.sop_uid)
        replace = False
        if existing is not None:
            if existing.sha256 == sha256:
                return StoreOutcome(StoreStatus.DUPLICATE, *outcome_ids)
            if self.settings.duplicate_policy != "replace":
                raise Conflict("an instance with this SOPInstanceUID is already stored with "
                               "different content (duplicate policy: reject)")
            replace = True

        blob_was_there = self.blobs.exists(sha256)
        self.blobs.put_file(sha256, path, move=owned, sha256=sha256)
        try:
            outcome = self.writer.insert(entry, replace=replace)
        except (IntegrityError, InstanceExists) as exc:
            self._compensate(sha256, blob_was_there)
            again = self.reader.find_instance(inst.sop_uid)
            if again is None:  # not a concurrent store: the index refused the row
                log.exception("index write failed")
                raise StorageFailure("the index could not record the instance") from exc
            if again.sha256 == sha256:
                return StoreOutcome(StoreStatus.DUPLICATE, *outcome_ids)
            raise Conflict("instance was stored concurrently with different content") from exc
        except VesaliusError:
            self._compensate(sha256, blob_was_there)
            raise
        except SQLAlchemyError as exc:
            self._compensate(sha256, blob_was_there)
            log.exception("index write failed")
            raise StorageFailure("the index could not record the instance") from exc
        except BaseException:
            self._compensate(sha256, blob_was_there)
            raise
        if outcome.replaced_blob_key is not None:
            self._forget_cached(inst.sop_uid)
        self.events.publish(InstanceStored(*outcome_ids, new_study=outcome.new_study,
                                           new_series=outcome.new_series, replaced=replace))
        return StoreOutcome(StoreStatus.REPLACED if replace else StoreStatus.STORED, *outcome_ids)

    def _compensate(self, key: str, blob_was_there: bool) -> None:
        if blob_was_there:
            return
        try:
            if key not in self.reader.referenced_blob_keys([key]):
                self.blobs.delete(key)
        except Exception:
            log.exception("could not remove an unindexed blob; the sweep will collect it")

    def sweep_orphans(self, *, older_than_s: float = 3600.0) -> int:
        """Delete blobs no index row references (left by a crash mid-store)."""
        keys_fn = getattr(self.blobs, "keys", None)
        if keys_fn is None:
            return 0
        # Not local_path: an encrypted store has no plaintext path but still knows ages.
        modified_at = getattr(self.blobs, "modified_at", None)
        removed = 0
        batch: list[str] = []
        cutoff = time.time() - older_than_s

        def flush() -> int:
            used = self.reader.referenced_blob_keys(batch)
            count = 0
            for key in batch:
                if key in used:
                    continue
                written = modified_at(key) if modified_at is not None else None
                if written is not None and written > cutoff:
                    continue
                self.blobs.delete(key)
                count += 1
            batch.clear()
            return count

        for key in keys_fn():
            batch.append(key)
            if len(batch) >= 500:
                removed += flush()
        if batch:
            removed += flush()
        return removed

    # -- finding -----------------------------------------------------------------
    def search(
        self,
        level: Level,
        params: Sequence[tuple[str, str]],
        *,
        includefields: Sequence[str] = (),
        fuzzy: bool = False,
        limit: int | None = None,
        offset: int = 0,
        study_uid: str | None = None,
        series_uid: str | None = None,
        patients: PatientKeys | None = None,
    ) -> SearchResult:
        """Match ``params`` (attribute, value) at ``level``; results as DICOM JSON. With
        ``patients``, only studies filed under those (PatientID, Issuer) identities match."""
        max_limit = self.settings.qido_max_limit
        limit = self.settings.qido_default_limit if limit is None else limit
        if limit < 1 or offset < 0:
            raise InvalidInput("limit must be positive and offset non-negative")
        limit = min(limit, max_limit)
        criteria = _criteria(params, fuzzy=fuzzy)
        returned = [(c.tag, c.keyword) for c in criteria]
        if study_uid is not None:
            criteria.append(Criterion("StudyInstanceUID", 0x0020000D,
                                      parse_matcher(require_uid(study_uid), "UI")))
        if series_uid is not None:
            criteria.append(Criterion("SeriesInstanceUID", 0x0020000E,
                                      parse_matcher(require_uid(series_uid), "UI")))
        include_all = any(f.strip().lower() == "all" for f in includefields)
        for field_name in includefields:
            for part in field_name.split(","):
                if part.strip() and part.strip().lower() != "all":
                    returned.append(resolve_tag(part))
        result = self.reader.search(level, criteria, limit=limit, offset=offset,
                                    identities=patients)
        matches = [self._result_json(level, row, returned, include_all) for row in result.rows]
        return SearchResult(matches, result.has_more, result.ignored)

    def _result_json(self, level: Level, row: Any, returned: list[tuple[int, str]],
                     include_all: bool) -> JsonDict:
        stored: JsonDict = {}
        levels = LEVELS_UP[level]
        if Level.PATIENT in levels:
            stored.update(attrs_of(row, "attrs" if level is Level.PATIENT else "patient_attrs"))
        if Level.STUDY in levels:
            stored.update(attrs_of(row, "attrs" if level is Level.STUDY else "study_attrs"))
        if Level.SERIES in levels:
            stored.update(attrs_of(row, "attrs" if level is Level.SERIES else "series_attrs"))
        if level is Level.IMAGE:
            stored.update(json.loads(row.metadata_json))
        wanted: list[tuple[int, str]] = [resolve_tag(k) for k in DEFAULT_RETURN[level]]
        wanted += returned
        out: JsonDict = {}
        if include_all:
            out.update({k: v for k, v in stored.items() if "BulkDataURI" not in v})
        for tag, keyword in wanted:
            key = tag_hex(tag)
            if keyword in _DERIVED and level in (Level.STUDY, Level.SERIES):
                column, vr = _DERIVED[keyword]
                if (level is Level.SERIES) != (keyword == "NumberOfSeriesRelatedInstances"):
                    continue
                value = getattr(row, column)
                if vr == "IS":
                    out[key] = make_element(vr, [int(value)])
                else:
                    out[key] = make_element(vr, [v for v in str(value).split("\\") if v])
            elif key in stored:
                out[key] = stored[key]
            elif key not in out:
                out[key] = {"vr": vr_of(keyword, tag)}
        out["00081190"] = {"vr": "UR", "Value": [self._retrieve_path(level, row)]}
        return dict(sorted(out.items()))

    @staticmethod
    def _retrieve_path(level: Level, row: Any) -> str:
        if level is Level.STUDY:
            return f"{BULK_BASE_MARKER}studies/{row.study_uid}"
        if level is Level.SERIES:
            return f"{BULK_BASE_MARKER}studies/{row.study_uid}/series/{row.series_uid}"
        if level is Level.IMAGE:
            return BULK_BASE_MARKER + instance_path(row.study_uid, row.series_uid, row.sop_uid)
        return f"{BULK_BASE_MARKER}patients/{row.patient_id}"

    def locate(self, level: Level, params: Sequence[tuple[str, str]],
               *, limit: int = 100000, patients: PatientKeys | None = None
               ) -> list[StoredInstance]:
        """Stored instances of every entity matching ``params`` at ``level`` (for retrieves)."""
        result = self.reader.search(level if level is not Level.PATIENT else Level.STUDY,
                                    _criteria(params), limit=limit, identities=patients)
        found: list[StoredInstance] = []
        for row in result.rows:
            study = row.study_uid
            series = getattr(row, "series_uid", None) if level in (Level.SERIES,
                                                                  Level.IMAGE) else None
            sop = getattr(row, "sop_uid", None) if level is Level.IMAGE else None
            found.extend(self.reader.instances_in(study, series, sop))
        return found

    def study_patient(self, study_uid: str) -> tuple[str, str] | None:
        """(PatientID, IssuerOfPatientID) the study is filed under; None when unknown."""
        return self.reader.study_patient(require_uid(study_uid))

    def verify(self, sop_uid: str) -> tuple[str, bool] | None:
        """(SOP class, checksum still matches) of a stored instance, or None if unknown.

        Used by storage commitment: we only commit to what is really stored intact.
        """
        known = self.reader.find_instance(sop_uid)
        if known is None:
            return None
        try:
            digest = hashlib.sha256()
            for chunk in self.blobs.open_stream(known.blob_key):
                digest.update(chunk)
        except (NotFound, TamperedData):  # a damaged encrypted blob is not stored intact
            return known.sop_class_uid, False
        return known.sop_class_uid, digest.hexdigest() == known.sha256

    # -- retrieving --------------------------------------------------------------
    def instances(self, study_uid: str, series_uid: str | None = None,
                  sop_uid: str | None = None) -> list[StoredInstance]:
        _require_uids(study_uid, series_uid, sop_uid)
        found = self.reader.instances_in(study_uid, series_uid, sop_uid)
        if not found:
            raise NotFound("no such study, series or instance")
        return found

    def metadata_texts(self, study_uid: str, series_uid: str | None = None,
                       sop_uid: str | None = None) -> list[str]:
        """Precomputed instance metadata (JSON texts with BulkDataURI markers)."""
        _require_uids(study_uid, series_uid, sop_uid)
        return list(self.reader.metadata_texts(study_uid, series_uid, sop_uid))

    def stream(self, instance: StoredInstance) -> tuple[int, Iterator[bytes]]:
        """(length, chunks) of the instance as served (see ``read_bytes``); stored bytes
        stream from the blob store without being loaded."""
        if instance.corrected_patient is not None:
            data = self.read_bytes(instance)
            return len(data), iter([data])
        return instance.size, self.blobs.open_stream(instance.blob_key)

    def read_bytes(self, instance: StoredInstance) -> bytes:
        """The instance as served: stored bytes, or — for a study a merge re-filed — the
        stored file with its Patient module corrected (the stored file is never rewritten)."""
        data = self.blobs.get(instance.blob_key)
        if instance.corrected_patient is None:
            return data
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.update(Dataset.from_json(instance.corrected_patient))
        return dataset_to_bytes(ds)

    def dataset(self, instance: StoredInstance) -> Dataset:
        """The parsed stored instance (small LRU so rendering frames does not re-parse)."""
        if instance.corrected_patient is not None:  # never served from a pre-merge cache
            return pydicom.dcmread(io.BytesIO(self.read_bytes(instance)))
        with self._cache_lock:
            cached = self._dataset_cache.pop(instance.sop_uid, None)
            if cached is not None:
                self._dataset_cache[instance.sop_uid] = cached  # most recently used last
        if cached is not None:
            return cached
        ds = pydicom.dcmread(io.BytesIO(self.read_bytes(instance)))
        if instance.size > _CACHE_MAX_INSTANCE_BYTES:
            return ds
        with self._cache_lock:
            if len(self._dataset_cache) >= 8:
                self._dataset_cache.pop(next(iter(self._dataset_cache)))
            self._dataset_cache[instance.sop_uid] = ds
        return ds

    def _forget_cached(self, sop_uid: str) -> None:
        with self._cache_lock:
            self._dataset_cache.pop(sop_uid, None)

    def frames(self, study_uid: str, series_uid: str, sop_uid: str, numbers: Sequence[int],
               *, native: bool) -> list[Frame]:
        """Frames (1-based numbers) as stored or, with ``native``, decoded to native bytes."""
        (instance,) = self.instances(study_uid, series_uid, sop_uid)
        count = instance.number_of_frames
        if count is None:
            raise NotFound("instance has no pixel data")
        for n in numbers:
            if n < 1 or n > count:
                raise InvalidInput(f"frame {n} is out of range (1..{count})")
        layout = layout_from_json(instance.pixel_layout) if instance.pixel_layout else None
        stored_ts = instance.transfer_syntax_uid
        if layout is not None and (not native or not layout.encapsulated):
            path = self.blobs.local_path(instance.blob_key)
            if layout.transfer_syntax_uid != "1.2.840.10008.1.2.2":
                ts = stored_ts if layout.encapsulated else "1.2.840.10008.1.2.1"
                if path is not None:
                    return [Frame(read_frame(path, layout, n - 1), ts) for n in numbers]
                # No local file (encrypted or remote store): ranged reads of the frame's bytes.
                return [Frame(self._ranged_frame(instance.blob_key, layout, n - 1), ts)
                        for n in numbers]
        ds = self.dataset(instance)
        if native or stored_ts in _NATIVE:
            return [Frame(decode_frame(ds, n - 1), "1.2.840.10008.1.2.1") for n in numbers]
        all_frames = list(generate_frames(ds.PixelData, number_of_frames=count))
        return [Frame(all_frames[n - 1], stored_ts) for n in numbers]

    def _ranged_frame(self, key: str, layout: PixelLayout, index: int) -> bytes:
        """Frame ``index`` (0-based) as stored, read with ``get_range`` (see ``read_frame``)."""
        parts: list[bytes] = []
        for frame_range in layout.frames[index]:
            data = self.blobs.get_range(key, frame_range.offset, frame_range.length)
            if len(data) != frame_range.length:
                raise InvalidInput("stored file is shorter than its pixel layout says")
            parts.append(data)
        return b"".join(parts)

    def bulkdata(self, study_uid: str, series_uid: str, sop_uid: str, tag_text: str) -> bytes:
        """The value of a top-level bulk data element (PS3.18 §10.4.1.1.5)."""
        (instance,) = self.instances(study_uid, series_uid, sop_uid)
        try:
            tag = int(tag_text, 16)
        except ValueError as exc:
            raise InvalidInput("bulk data tag must be 8 hex digits") from exc
        ds = self.dataset(instance)
        if tag not in ds:
            raise NotFound("no such bulk data element")
        value = ds[tag].value
        if not isinstance(value, bytes | bytearray):
            raise NotFound("element is not bulk data")
        return bytes(value)

    # -- deleting ----------------------------------------------------------------
    def delete(self, study_uid: str, series_uid: str | None = None,
               sop_uid: str | None = None, *, reason: str = "") -> None:
        _require_uids(study_uid, series_uid, sop_uid)
        unused = self.writer.delete(study_uid, series_uid, sop_uid, reason=reason)
        with self._cache_lock:
            self._dataset_cache.clear()
        for key in unused:
            try:
                self.blobs.delete(key)
            except Exception:
                log.exception("could not delete blob; the sweep will collect it")
        self.events.publish(InstancesDeleted(study_uid, series_uid, sop_uid))


def _require_uids(*uids: str | None) -> None:
    for uid in uids:
        if uid is not None:
            require_uid(uid)


def _criteria(params: Sequence[tuple[str, str]], *, fuzzy: bool = False) -> list[Criterion]:
    """Matching criteria for (attribute, value) pairs, keyword or ``ggggeeee`` names."""
    criteria = []
    for name, value in params:
        tag, keyword = resolve_tag(name)
        criteria.append(Criterion(keyword, tag, parse_matcher(value, vr_of(keyword, tag),
                                                              fuzzy=fuzzy)))
    return criteria
