"""Batch and transaction Bundles on real databases: ordering, references, atomicity."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from vesalius.core.errors import InvalidInput, PreconditionFailed, TooLarge, ValidationFailed
from vesalius.record.schema import history
from vesalius.record.service import RecordOptions, RecordService

BASE = "http://127.0.0.1:8080/fhir"
MRN = "urn:oid:1.2.36.146.595.217.0.1"
PAT = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"
ENC = "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"


def post(full_url: str | None, resource: dict[str, Any], **request: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource,
                             "request": {"method": "POST", "url": resource["resourceType"],
                                         **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def patient(mrn: str = "1") -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}],
            "name": [{"family": "Chalmers", "given": ["Peter"]}]}


def observation(subject: str, encounter: str | None = None, status: str = "final"
                ) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 13.2, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                          "code": "g/dL"}}
    if encounter:
        obs["encounter"] = {"reference": encounter}
    return obs


def encounter(subject: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"}, "subject": {"reference": subject}}


def versions(record: RecordService) -> int:
    with record.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(history)).scalar_one())


def process(record: RecordService, b: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return record.process_bundle(b, base=BASE, **kw)


def test_transaction_resolves_temporary_ids_in_any_order(record: RecordService) -> None:
    # The Observation comes first and refers to entries that come later.
    response = process(record, bundle(
        "transaction",
        post(None, observation(PAT, ENC)),
        post(ENC, encounter(PAT)),
        post(PAT, patient())))
    assert response["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["201 Created"] * 3
    locations = [e["response"]["location"] for e in response["entry"]]
    obs_id = locations[0].split("/")[1]
    enc_ref = "/".join(locations[1].split("/")[:2])
    pat_ref = "/".join(locations[2].split("/")[:2])
    stored = record.read("Observation", obs_id).resource
    assert stored["subject"]["reference"] == pat_ref
    assert stored["encounter"]["reference"] == enc_ref
    assert record.read("Encounter", enc_ref.split("/")[1]).resource["subject"]["reference"] \
        == pat_ref


def test_transaction_is_atomic(record: RecordService) -> None:
    before = versions(record)
    with pytest.raises(ValidationFailed) as failed:
        process(record, bundle("transaction", post(PAT, patient()),
                               post(None, observation(PAT, status="maybe"))))
    assert "Bundle.entry[1]" in failed.value.message
    assert failed.value.issues[0]["expression"].startswith("Bundle.entry[1].resource.status")
    assert versions(record) == before


def test_transaction_reference_to_missing_resource(record: RecordService) -> None:
    before = versions(record)
    with pytest.raises(ValidationFailed) as failed:
        process(record, bundle("transaction", post(PAT, patient()),
                               post(None, observation("Patient/does-not-exist"))))
    assert failed.value.issues[0]["expression"] == "Bundle.entry[1].resource.subject"
    with pytest.raises(InvalidInput, match="names no entry"):
        process(record, bundle("transaction", post(None, observation(PAT))))
    assert versions(record) == before


def test_conditional_create_and_conditional_references(record: RecordService) -> None:
    loaded = bundle("transaction", post(PAT, patient("42"), ifNoneExist=f"identifier={MRN}|42"),
                    post(None, observation(PAT)))
    first = process(record, loaded)
    second = process(record, loaded)
    assert first["entry"][0]["response"]["status"] == "201 Created"
    assert second["entry"][0]["response"]["status"] == "200 OK"
    assert second["entry"][0]["response"]["location"] == first["entry"][0]["response"]["location"]
    # a conditional reference resolves to the one match
    third = process(record, bundle("transaction",
                                   post(None, observation(f"Patient?identifier={MRN}|42"))))
    obs = record.read("Observation", third["entry"][0]["response"]["location"].split("/")[1])
    assert obs.resource["subject"]["reference"] == \
        "/".join(first["entry"][0]["response"]["location"].split("/")[:2])
    with pytest.raises(PreconditionFailed):
        process(record, bundle("transaction",
                               post(None, observation(f"Patient?identifier={MRN}|nobody"))))


def test_processing_order_delete_post_put_get(record: RecordService) -> None:
    old = record.create(patient("old"))
    kept = record.update("Patient", "kept", {**patient("kept"), "id": "kept"})
    response = process(record, bundle(
        "transaction",
        {"request": {"method": "GET", "url": f"Patient?identifier={MRN}|new"}},
        {"resource": {**patient("kept"), "id": "kept", "gender": "male"},
         "request": {"method": "PUT", "url": "Patient/kept", "ifMatch": kept.etag}},
        post(PAT, patient("new")),
        {"request": {"method": "DELETE", "url": f"Patient/{old.id}"}}))
    search = response["entry"][0]["resource"]
    assert search["type"] == "searchset" and search["total"] == 1  # GET ran after the POST
    assert response["entry"][1]["response"]["status"] == "200 OK"
    assert response["entry"][3]["response"]["status"] == "204 No Content"
    assert record.read("Patient", "kept").resource["gender"] == "male"


def test_patch_entry_and_put_conditional(record: RecordService) -> None:
    created = record.create(patient("p"))
    ops = [{"op": "add", "path": "/gender", "value": "female"}]
    response = process(record, bundle(
        "transaction",
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                      "data": base64.b64encode(json.dumps(ops).encode()).decode()},
         "request": {"method": "PATCH", "url": f"Patient/{created.id}"}},
        {"resource": patient("q"), "request": {"method": "PUT",
                                               "url": f"Patient?identifier={MRN}|q"}}))
    assert [e["response"]["status"] for e in response["entry"]] == ["200 OK", "201 Created"]
    assert record.read("Patient", created.id).resource["gender"] == "female"


def test_batch_entries_fail_alone(record: RecordService) -> None:
    response = process(record, bundle(
        "batch", post(None, patient("b1")), post(None, {**patient("b2"), "gender": "robot"}),
        {"request": {"method": "GET", "url": "Patient/nope"}},
        post(None, patient("b3"))),
        representation=True)
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity", "404 Not Found",
                        "201 Created"]
    assert response["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert response["entry"][0]["resource"]["identifier"][0]["value"] == "b1"


@pytest.mark.parametrize("bad", [
    {"resourceType": "Patient"},
    {"resourceType": "Bundle", "type": "collection"},
    {"resourceType": "Bundle", "type": "transaction", "entry": {"not": "a list"}},
    {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {}}]},
    {"resourceType": "Bundle", "type": "transaction",
     "entry": [{"request": {"method": "POST", "url": "Patient"}}]},
    {"resourceType": "Bundle", "type": "transaction",
     "entry": [{"request": {"method": "TRACE", "url": "Patient"}}]},
    {"resourceType": "Bundle", "type": "transaction",
     "entry": [post(PAT, {"resourceType": "Patient"}), post(PAT, {"resourceType": "Patient"})]},
    {"resourceType": "Bundle", "type": "transaction",
     "entry": [post(None, {"resourceType": "Patient"}, url="Observation")]},
])
def test_malformed_bundles_are_refused_whole(record: RecordService, bad: Any) -> None:
    before = versions(record)
    with pytest.raises(InvalidInput):
        process(record, bad)
    assert versions(record) == before


def test_huge_bundle_is_refused(settings: Any) -> None:
    from vesalius.database.engine import make_engines

    record = RecordService(*make_engines(settings), options=RecordOptions(max_bundle_entries=10))
    with pytest.raises(TooLarge):
        process(record, bundle("transaction", *[post(None, patient(str(n))) for n in range(11)]))


def test_one_resource_changed_twice_fails_the_transaction(record: RecordService) -> None:
    created = record.create(patient("twice"))
    before = versions(record)
    with pytest.raises(InvalidInput, match="more than one entry"):
        process(record, bundle(
            "transaction",
            {"resource": {**patient("twice"), "id": created.id, "gender": "male"},
             "request": {"method": "PUT", "url": f"Patient/{created.id}"}},
            {"resource": {**patient("twice"), "id": created.id, "gender": "female"},
             "request": {"method": "PUT", "url": f"Patient/{created.id}"}}))
    assert versions(record) == before


def test_demo_record_loads_once(record: RecordService) -> None:
    from vesalius.demo.record import demo_record_bundle

    first = process(record, demo_record_bundle())
    assert {e["response"]["status"] for e in first["entry"]} == {"201 Created"}
    before = versions(record)
    second = process(record, demo_record_bundle())
    assert {e["response"]["status"] for e in second["entry"]} == {"200 OK"}
    assert [e["response"]["location"] for e in second["entry"]] == \
        [e["response"]["location"] for e in first["entry"]]
    assert versions(record) == before
