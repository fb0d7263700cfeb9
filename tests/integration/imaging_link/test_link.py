"""The imaging link on a real archive, record and worklist (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from data_factory import make_instance, to_bytes, write
from vesalius.archive.factory import build_archive
from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.core.errors import Gone
from vesalius.database.engine import make_engines
from vesalius.dicom.attributes import Level
from vesalius.dicom.patient_identity import identifier_system
from vesalius.imaging_link.link import ImagingLink
from vesalius.imaging_link.tables import metadata as link_tables
from vesalius.record.schema import metadata as record_tables
from vesalius.record.service import RecordService
from vesalius.worklist.service import WorklistService

ACSN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}


@dataclass
class World:
    settings: Settings
    archive: ArchiveService
    record: RecordService
    worklist: WorklistService
    link: ImagingLink
    tmp: Path

    def store(self, **kwargs: Any) -> Any:
        ds = make_instance(**kwargs)
        self.archive.store_file(write(ds, self.tmp))
        return ds

    def imaging_study(self, study_uid: str) -> dict[str, Any]:
        resource = self.record.read("ImagingStudy", study_uid).resource
        assert resource is not None
        return resource

    def history(self, resource_type: str, id: str) -> int:
        return self.record.history(resource_type, id).total


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    settings = replace(settings, public_base_url="https://pacs.example.org/base/")
    reader, writer = make_engines(settings)
    # The PostgreSQL schema lives for the whole session: start from empty tables.
    record_tables.drop_all(writer)
    link_tables.drop_all(writer)
    archive = build_archive(settings, engines=(reader, writer))
    record = RecordService(reader, writer)
    worklist = WorklistService(writer)
    link = ImagingLink(settings, archive, record, worklist)
    files = tmp_path / "files"
    files.mkdir()
    yield World(settings, archive, record, worklist, link, files)
    link.close()


def _mrn() -> str:
    return f"MRN-{uuid.uuid4().hex[:8]}"


def _patient(world: World, mrn: str, issuer: str = "") -> str:
    return world.record.create({
        "resourceType": "Patient", "active": True,
        "identifier": [{"system": identifier_system(issuer), "value": mrn}],
        "name": [{"family": "Known", "given": ["Patient"]}]}).id


def _three_series_study(world: World, mrn: str, *, accession: str = "",
                        issuer: str | None = None) -> tuple[str, dict[str, list[str]]]:
    study = generate_uid()
    layout: dict[str, list[str]] = {}
    for number, (modality, count) in enumerate((("CT", 2), ("CT", 3), ("SR", 1)), start=1):
        series = generate_uid()
        for n in range(count):
            ds = world.store(patient_id=mrn, issuer=issuer, study_uid=study, series_uid=series,
                             modality=modality, series_number=number, instance_number=n + 1,
                             accession=accession, description="CT CHEST",
                             patient_name="DOE^JANE^Q^DR^III", seed=n)
            layout.setdefault(series, []).append(str(ds.SOPInstanceUID))
    return study, layout


def test_a_stored_study_becomes_one_imaging_study(world: World) -> None:
    mrn = _mrn()
    patient_id = _patient(world, mrn, issuer="HOSP")
    study, layout = _three_series_study(world, mrn, accession="A100", issuer="HOSP")

    assert world.link.flush() == 1
    assert world.link.flush() == 0
    resource = world.imaging_study(study)
    assert world.history("ImagingStudy", study) == 1
    assert resource["status"] == "available"
    assert resource["subject"] == {"reference": f"Patient/{patient_id}"}
    assert {"system": "urn:dicom:uid", "value": f"urn:oid:{study}"} in resource["identifier"]
    assert {"type": ACSN, "value": "A100"} in resource["identifier"]
    assert resource["numberOfSeries"] == 3
    assert resource["numberOfInstances"] == 6
    assert resource["modality"] == [
        {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"},
        {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "SR"}]
    assert resource["started"].startswith("2026-01-01T12:00:00")
    assert resource["description"] == "CT CHEST"
    assert resource["procedureCode"] == [{"text": "CT CHEST"}]
    assert "basedOn" not in resource
    assert "referrer" not in resource
    got = {s["uid"]: [i["uid"] for i in s["instance"]] for s in resource["series"]}
    assert got == layout
    assert [s["number"] for s in resource["series"]] == [1, 2, 3]
    assert [s["numberOfInstances"] for s in resource["series"]] == [2, 3, 1]
    first = resource["series"][0]["instance"][0]
    assert first["sopClass"] == {"system": "urn:ietf:rfc:3986",
                                 "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"}
    assert first["number"] == 1
    # Only the Patient created above: the study matched it.
    assert world.record.search("Patient", []).total == 1


def test_endpoint_and_uids_address_the_stored_instance(world: World) -> None:
    study, series = generate_uid(), generate_uid()
    ds = make_instance(patient_id=_mrn(), study_uid=study, series_uid=series)
    world.archive.store_file(write(ds, world.tmp))
    world.link.flush()
    resource = world.imaging_study(study)
    endpoint = world.record.read("Endpoint", "vesalius-dicomweb").resource
    assert resource["endpoint"] == [{"reference": "Endpoint/vesalius-dicomweb"}]
    assert endpoint is not None
    assert endpoint["status"] == "active"
    assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
    assert endpoint["payloadMimeType"] == ["application/dicom"]
    assert endpoint["address"] == "https://pacs.example.org/base/dicom-web"

    s = resource["series"][0]
    url = f"{endpoint['address']}/studies/{resource['id']}/series/{s['uid']}/instances/" \
          f"{s['instance'][0]['uid']}"
    parts = url.removeprefix(endpoint["address"] + "/").split("/")
    assert parts[0::2] == ["studies", "series", "instances"]
    (stored,) = world.archive.instances(*parts[1::2])
    assert world.archive.read_bytes(stored) == to_bytes(ds)


def test_provisional_patient_from_the_study(world: World) -> None:
    mrn = _mrn()
    first, _ = _three_series_study(world, mrn)
    second = world.store(patient_id=mrn, patient_name="DOE^JANE^Q^DR^III").StudyInstanceUID
    assert world.link.flush() == 2
    subject = world.imaging_study(first)["subject"]["reference"]
    assert world.imaging_study(second)["subject"]["reference"] == subject
    patient = world.record.read("Patient", subject.split("/")[1]).resource
    assert patient is not None
    assert patient["identifier"] == [{"system": "urn:vesalius:patient-id", "value": mrn}]
    assert patient["name"] == [{"use": "official", "family": "DOE", "given": ["JANE", "Q"],
                                "prefix": ["DR"], "suffix": ["III"]}]
    assert patient["gender"] == "other"
    assert patient["birthDate"] == "1980-01-01"
    assert patient["active"] is True
    assert patient["meta"]["tag"] == [{"system": "urn:vesalius:tags",
                                       "code": "provisional-identity",
                                       "display": "Created from DICOM; needs reconciliation"}]


def test_study_without_patient_id_gets_its_own_provisional_patient(world: World) -> None:
    a = world.store(patient_id="").StudyInstanceUID
    b = world.store(patient_id="").StudyInstanceUID
    world.link.flush()
    subjects = {world.imaging_study(uid)["subject"]["reference"] for uid in (a, b)}
    assert len(subjects) == 2


def test_deleting_images_rebuilds_and_deleting_the_study_deletes(world: World) -> None:
    study, layout = _three_series_study(world, _mrn())
    world.link.flush()
    doomed = next(iter(layout))
    world.archive.delete(study, doomed)
    assert world.link.flush() == 1
    resource = world.imaging_study(study)
    assert resource["numberOfSeries"] == 2
    assert resource["numberOfInstances"] == 4
    assert doomed not in {s["uid"] for s in resource["series"]}
    assert world.history("ImagingStudy", study) == 2

    world.archive.delete(study)
    assert world.link.flush() == 1
    with pytest.raises(Gone):
        world.record.read("ImagingStudy", study)
    assert world.history("ImagingStudy", study) == 3
    assert world.record.vread("ImagingStudy", study, "2").resource == resource


def test_imaging_order_is_scheduled_once_and_its_study_is_based_on_it(world: World) -> None:
    mrn = _mrn()
    patient_id = _patient(world, mrn, issuer="1.2.3.4")
    order = world.record.create({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005"}]}],
        "code": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                             "code": "MR"}], "text": "MR brain"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "occurrenceDateTime": "2026-03-02T08:30:00+01:00"})
    stored = world.record.read("ServiceRequest", order.id).resource
    assert stored is not None
    (acsn,) = [i for i in stored["identifier"] if i.get("type") == ACSN]
    accession = acsn["value"]
    assert 0 < len(accession) <= 16
    (step,) = world.worklist.find([("AccessionNumber", accession)])
    assert (step.patient_id, step.issuer, step.modality) == (mrn, "1.2.3.4", "MR")
    assert (step.start_date, step.start_time) == ("20260302", "083000")
    assert step.description == "MR brain"
    assert step.patient_name == "Known^Patient"

    world.record.update("ServiceRequest", order.id, {**stored, "note": [{"text": "again"}]})
    assert len(world.worklist.find([("AccessionNumber", accession)], include_done=True)) == 1

    study = world.store(patient_id=mrn, issuer="1.2.3.4", accession=accession,
                        study_uid=step.study_uid).StudyInstanceUID
    world.link.flush()
    resource = world.imaging_study(study)
    assert resource["basedOn"] == [{"reference": f"ServiceRequest/{order.id}"}]
    assert resource["subject"] == {"reference": f"Patient/{patient_id}"}


def test_order_placed_after_the_study_still_links(world: World) -> None:
    mrn = _mrn()
    patient_id = _patient(world, mrn)
    study = world.store(patient_id=mrn, accession="LATE1").StudyInstanceUID
    world.link.flush()
    assert "basedOn" not in world.imaging_study(study)
    order = world.record.create({
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "identifier": [{"type": ACSN, "value": "LATE1"}],
        "code": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                             "code": "CT"}]},
        "subject": {"reference": f"Patient/{patient_id}"}})
    world.link.flush()
    assert world.imaging_study(study)["basedOn"] == [{"reference": f"ServiceRequest/{order.id}"}]


def test_ambiguous_patient_is_a_problem_until_merged(world: World) -> None:
    mrn = _mrn()
    first, second = _patient(world, mrn), _patient(world, mrn)
    study = world.store(patient_id=mrn).StudyInstanceUID
    world.link.flush()
    with pytest.raises(Exception, match="not known"):
        world.record.read("ImagingStudy", study)
    (problem,) = world.link.problems()
    assert (problem.study_uid, problem.code) == (study, "multiple-matches")
    assert problem.issue["severity"] == "error"

    world.link.merge(second, first)
    world.link.flush()
    assert world.imaging_study(study)["subject"] == {"reference": f"Patient/{first}"}
    assert world.link.problems() == []


def test_merge_moves_record_and_image_index_together(world: World) -> None:
    mrn = _mrn()
    target = _patient(world, mrn, issuer="HOSP")
    temporary = _mrn()
    study, _ = _three_series_study(world, temporary)
    world.link.flush()
    source = world.imaging_study(study)["subject"]["reference"].split("/")[1]
    observation = world.record.create({
        "resourceType": "Observation", "status": "final", "code": {"text": "note"},
        "subject": {"reference": f"Patient/{source}"}}).id

    result = world.link.merge(source, target)
    assert sorted(result.repointed) == sorted([f"ImagingStudy/{study}",
                                               f"Observation/{observation}"])
    assert result.studies == [study]
    moved = world.record.read("Observation", observation)
    assert moved.resource is not None and moved.version == 2
    assert moved.resource["subject"] == {"reference": f"Patient/{target}"}
    assert world.record.vread("Observation", observation, "1").resource is not None

    old = world.record.read("Patient", source).resource
    new = world.record.read("Patient", target).resource
    assert old is not None and new is not None
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": f"Patient/{target}"}, "type": "replaced-by"}]
    assert new["link"] == [{"other": {"reference": f"Patient/{source}"}, "type": "replaces"}]
    assert {"system": "urn:vesalius:patient-id", "value": temporary, "use": "old"} \
        in new["identifier"]
    assert world.history("Patient", source) == 2

    found = world.archive.search(Level.STUDY, [("PatientID", mrn), ("IssuerOfPatientID", "HOSP")])
    assert [m["0020000D"]["Value"][0] for m in found.matches] == [study]
    assert world.archive.search(Level.STUDY, [("PatientID", temporary)]).matches == []
    assert len(world.archive.instances(study)) == 6

    world.link.flush()
    assert world.imaging_study(study)["subject"] == {"reference": f"Patient/{target}"}
    # A later study under the old identity goes to the Patient that replaced it.
    later = world.store(patient_id=temporary).StudyInstanceUID
    world.link.flush()
    assert world.imaging_study(later)["subject"] == {"reference": f"Patient/{target}"}


def test_failed_merge_changes_nothing(world: World) -> None:
    mrn = _mrn()
    study = world.store(patient_id=mrn).StudyInstanceUID
    world.link.flush()
    source = world.imaging_study(study)["subject"]["reference"].split("/")[1]
    with pytest.raises(Exception, match="not known"):
        world.link.merge(source, "no-such-patient")
    patient = world.record.read("Patient", source).resource
    assert patient is not None and patient["active"] is True
    assert world.archive.search(Level.STUDY, [("PatientID", mrn)]).matches


def test_background_worker_rebuilds_after_quiet(world: World) -> None:
    link = world.link
    link.stop()
    study = world.store(patient_id=_mrn()).StudyInstanceUID
    link.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and link.pending.count():
        time.sleep(0.05)
    link.stop()
    assert world.imaging_study(study)["numberOfInstances"] == 1


def test_cancelled_or_deleted_orders_leave_the_worklist(world: World) -> None:
    patient_id = _patient(world, _mrn(), issuer="1.2.3.4")

    def order() -> tuple[str, dict[str, Any], str]:
        created = world.record.create({
            "resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "category": [{"coding": [{"system": "http://snomed.info/sct",
                                      "code": "363679005"}]}],
            "code": {"text": "CT chest"}, "subject": {"reference": f"Patient/{patient_id}"},
            "occurrenceDateTime": "2026-03-02"})
        stored = world.record.read("ServiceRequest", created.id).resource
        assert stored is not None
        (acsn,) = [i for i in stored["identifier"] if i.get("type") == ACSN]
        return created.id, stored, acsn["value"]

    revoked_id, revoked, revoked_acsn = order()
    deleted_id, _, deleted_acsn = order()
    world.record.update("ServiceRequest", revoked_id, {**revoked, "status": "revoked"})
    world.record.delete("ServiceRequest", deleted_id)
    for accession in (revoked_acsn, deleted_acsn):
        assert world.worklist.find([("AccessionNumber", accession)]) == []
        (step,) = world.worklist.find([("AccessionNumber", accession)], include_done=True)
        assert step.status == "DISCONTINUED"
