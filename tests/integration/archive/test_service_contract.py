"""The archive service contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from data_factory import make_instance, write
from vesalius.archive.events import InstancesDeleted, InstanceStored
from vesalius.archive.factory import build_archive
from vesalius.archive.service import ArchiveService, StoreStatus
from vesalius.config import Settings
from vesalius.core.errors import Conflict, InvalidInput, MissingAttribute, NotFound
from vesalius.dicom.attributes import Level


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_store_then_retrieve_bytes_and_counts(archive: ArchiveService, tmp_path: Path) -> None:
    path = write(make_instance(), tmp_path)
    outcome = archive.store_file(path)
    assert outcome.status is StoreStatus.STORED
    (stored,) = archive.instances(outcome.study_uid)
    assert stored.sha256 == _sha(path.read_bytes())
    assert archive.read_bytes(stored) == path.read_bytes()
    assert archive.reader.counts() == {"patients": 1, "studies": 1, "series": 1, "instances": 1}


def test_identical_resend_is_idempotent(archive: ArchiveService, tmp_path: Path) -> None:
    path = write(make_instance(), tmp_path)
    archive.store_file(path)
    assert archive.store_file(path).status is StoreStatus.DUPLICATE
    assert archive.reader.counts()["instances"] == 1


def test_different_bytes_same_uid_rejected_by_default(archive: ArchiveService,
                                                      tmp_path: Path) -> None:
    sop = generate_uid()
    study = generate_uid()
    first = write(make_instance(sop_uid=sop, study_uid=study, seed=1), tmp_path, "a.dcm")
    second = write(make_instance(sop_uid=sop, study_uid=study, seed=2), tmp_path, "b.dcm")
    archive.store_file(first)
    with pytest.raises(Conflict):
        archive.store_file(second)
    (stored,) = archive.instances(study)
    assert archive.read_bytes(stored) == first.read_bytes()
    assert len(list(archive.blobs.keys())) == 1  # type: ignore[attr-defined]


def test_replace_policy_keeps_newest_and_retains_old(settings: Settings, tmp_path: Path) -> None:
    archive = build_archive(replace(settings, duplicate_policy="replace"))
    sop, study, series = generate_uid(), generate_uid(), generate_uid()
    first = write(make_instance(sop_uid=sop, study_uid=study, series_uid=series, seed=1),
                  tmp_path, "a.dcm")
    second = write(make_instance(sop_uid=sop, study_uid=study, series_uid=series, seed=2),
                   tmp_path, "b.dcm")
    archive.store_file(first)
    assert archive.store_file(second).status is StoreStatus.REPLACED
    (stored,) = archive.instances(study)
    assert archive.read_bytes(stored) == second.read_bytes()
    assert archive.blobs.exists(_sha(first.read_bytes()))  # old version retained
    assert archive.reader.counts()["instances"] == 1
    archive.delete(study)
    assert not list(archive.blobs.keys())  # type: ignore[attr-defined]


def test_study_under_another_patient_identity_is_refused(archive: ArchiveService,
                                                          tmp_path: Path) -> None:
    study = generate_uid()
    archive.store_file(write(make_instance(study_uid=study, patient_id="A"), tmp_path))
    with pytest.raises(Conflict):
        archive.store_file(write(make_instance(study_uid=study, patient_id="B"), tmp_path))
    assert archive.reader.counts()["instances"] == 1
    assert len(list(archive.blobs.keys())) == 1  # type: ignore[attr-defined]


def test_missing_and_malformed_uids(archive: ArchiveService, tmp_path: Path) -> None:
    ds = make_instance()
    del ds.SeriesInstanceUID
    with pytest.raises(MissingAttribute, match="SeriesInstanceUID"):
        archive.store_file(write(ds, tmp_path, "x.dcm"))
    ds = make_instance()
    ds.StudyInstanceUID = "../../etc"
    with pytest.raises(InvalidInput, match="StudyInstanceUID"):
        archive.store_file(write(ds, tmp_path, "y.dcm"))
    assert archive.reader.counts()["instances"] == 0
    assert not list(archive.blobs.keys())  # type: ignore[attr-defined]


def test_concurrent_stores_into_one_study(archive: ArchiveService, tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    paths = [write(make_instance(study_uid=study, series_uid=series, instance_number=i,
                                 seed=i), tmp_path) for i in range(24)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(archive.store_file, paths + paths[:6]))
    assert sum(o.status is StoreStatus.STORED for o in outcomes) == 24
    assert sum(o.status is StoreStatus.DUPLICATE for o in outcomes) == 6
    result = archive.search(Level.STUDY, [("StudyInstanceUID", study)])
    (match,) = result.matches
    assert match["00201208"]["Value"] == [24]
    assert match["00201206"]["Value"] == [1]


def _make_instance_inserts_fail(archive: ArchiveService) -> None:
    """A real database failure: a trigger that aborts every insert into ``instances``."""
    from sqlalchemy import text

    engine = archive.writer.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER fail_inserts BEFORE INSERT ON instances "
                              "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(text("CREATE FUNCTION fail_inserts() RETURNS trigger AS $$ "
                              "BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER fail_inserts BEFORE INSERT ON instances "
                              "FOR EACH ROW EXECUTE FUNCTION fail_inserts()"))


def test_index_failure_removes_the_new_blob(archive: ArchiveService, tmp_path: Path) -> None:
    """Blob first, then index; when indexing fails nothing is left behind."""
    from vesalius.core.errors import StorageFailure

    _make_instance_inserts_fail(archive)
    with pytest.raises(StorageFailure):
        archive.store_file(write(make_instance(), tmp_path))
    assert not list(archive.blobs.keys())  # type: ignore[attr-defined]
    assert archive.reader.counts()["instances"] == 0


def test_sweep_removes_only_unreferenced_blobs(archive: ArchiveService, tmp_path: Path) -> None:
    kept = write(make_instance(), tmp_path)
    archive.store_file(kept)
    orphan = write(make_instance(), tmp_path, "orphan.dcm")
    archive.blobs.put_file("f" * 64, orphan)
    assert archive.sweep_orphans(older_than_s=0) == 1
    assert archive.blobs.exists(_sha(kept.read_bytes()))
    assert not archive.blobs.exists("f" * 64)


def test_events_are_published_after_commit(archive: ArchiveService, tmp_path: Path) -> None:
    seen: list[object] = []
    archive.events.subscribe(seen.append)
    outcome = archive.store_file(write(make_instance(), tmp_path))
    archive.delete(outcome.study_uid)
    assert isinstance(seen[0], InstanceStored) and seen[0].new_study
    assert isinstance(seen[1], InstancesDeleted)


def test_delete_updates_derived_attributes(archive: ArchiveService, tmp_path: Path) -> None:
    study = generate_uid()
    ct = archive.store_file(write(make_instance(study_uid=study, modality="CT"), tmp_path))
    archive.store_file(write(make_instance(study_uid=study, modality="MR"), tmp_path))
    archive.delete(study, ct.series_uid)
    (match,) = archive.search(Level.STUDY, [("StudyInstanceUID", study)]).matches
    assert match["00080061"]["Value"] == ["MR"]
    assert match["00201206"]["Value"] == [1]
    with pytest.raises(NotFound):
        archive.delete(study, ct.series_uid)
    archive.delete(study)
    assert archive.reader.counts() == {"patients": 0, "studies": 0, "series": 0, "instances": 0}


def test_extra_indexed_tags_are_matchable(settings: Settings, tmp_path: Path) -> None:
    archive = build_archive(replace(settings, extra_indexed_tags=("BodyPartExamined",
                                                                  "00180050")))
    ds = make_instance()
    ds.SliceThickness = "2.5"
    archive.store_file(write(ds, tmp_path))
    archive.store_file(write(make_instance(), tmp_path))
    found = archive.search(Level.IMAGE, [("SliceThickness", "2.5")]).matches
    assert len(found) == 1 and found[0]["00180050"]["Value"] == [2.5]
    assert archive.search(Level.IMAGE, [("SliceThickness", "")]).ignored == []


def test_metadata_is_precomputed_not_read_from_files(archive: ArchiveService,
                                                     tmp_path: Path) -> None:
    outcome = archive.store_file(write(make_instance(description="KEEP"), tmp_path))
    (stored,) = archive.instances(outcome.study_uid)
    archive.blobs.delete(stored.blob_key)  # metadata must come from the index alone
    (text,) = archive.metadata_texts(outcome.study_uid)
    assert '"KEEP"' in text
