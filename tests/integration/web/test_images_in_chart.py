"""Images in the chart, end to end over HTTP (SQLite and PostgreSQL): storing a DICOM study makes
an ImagingStudy appear whose Endpoint and UIDs give a WADO-RS URL that returns the same bytes;
deleting a series updates it; the study's subject is the Patient whose identifier matches.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from conftest import RunningDicom, RunningServer, free_port
from data_factory import CT_IMAGE_STORAGE, make_instance, to_bytes
from vesalius.config import Settings
from vesalius.dicom.patient_identity import identifier_system
from vesalius.node import build_node

ISSUER = "HOSP"
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture
def live(settings: Settings) -> Iterator[RunningServer]:
    """A server whose link rebuilds after 50 ms of quiet, listening where its settings say
    (the DICOMweb Endpoint's address is ``http://host:http_port/dicom-web``)."""
    port = free_port()
    node = build_node(replace(settings, imaging_link_quiet_ms=50, host="127.0.0.1",
                              http_port=port))
    with RunningServer(node, port) as running:
        yield running
    node.link.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stow(server: RunningServer, datas: list[bytes]) -> None:
    body = b"".join(b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n" + d + b"\r\n"
                    for d in datas) + b"--b0undary--\r\n"
    response = server.http.post(f"{server.dicomweb}/studies", content=body, timeout=60, headers={
              "Content-Type": 'multipart/related; type="application/dicom"; boundary=b0undary'})
    assert response.status_code == 200, response.text[:500]


def _parts(response: httpx.Response) -> list[bytes]:
    """The bodies of a multipart/related response, exactly as served."""
    match = re.search(r'boundary="?([^";,\s]+)"?', response.headers["content-type"])
    assert match is not None, response.headers["content-type"]
    segments = (b"\r\n" + response.content).split(b"\r\n--" + match.group(1).encode())
    assert segments[0] == b"" and segments[-1].startswith(b"--")
    return [segment[2:].partition(b"\r\n\r\n")[2] for segment in segments[1:-1]]


def _imaging_study(server: RunningServer, study: str) -> dict[str, Any] | None:
    response = server.http.get(f"{server.fhir}/ImagingStudy", timeout=30,
                               params={"identifier": f"urn:dicom:uid|urn:oid:{study}"})
    assert response.status_code == 200, response.text
    entries = response.json().get("entry", [])
    assert len(entries) <= 1
    return entries[0]["resource"] if entries else None


def _poll(server: RunningServer, study: str, ready: Callable[[dict[str, Any] | None], bool],
          what: str) -> dict[str, Any] | None:
    deadline = time.monotonic() + 20
    while True:
        found = _imaging_study(server, study)
        if ready(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {found}")
        time.sleep(0.05)


def test_stored_study_appears_as_imaging_study_whose_urls_return_the_same_bytes(
        live: RunningServer) -> None:
    mrn = f"MRN-{generate_uid()[-8:]}"
    created = live.http.post(f"{live.fhir}/Patient", timeout=30, json={
            "resourceType": "Patient", "active": True, "name": [{"family": "Chart"}],
            "identifier": [{"system": identifier_system(ISSUER), "value": mrn}]})
    assert created.status_code == 201, created.text
    patient = created.json()["id"]

    study, kept, doomed = generate_uid(), generate_uid(), generate_uid()
    sent: dict[str, str] = {}
    datas = []
    for series, number, count in ((kept, 1, 2), (doomed, 2, 1)):
        for n in range(count):
            ds = make_instance(patient_id=mrn, issuer=ISSUER, study_uid=study,
                               series_uid=series, series_number=number, instance_number=n + 1,
                               seed=number * 10 + n)
            data = to_bytes(ds)
            sent[str(ds.SOPInstanceUID)] = _sha(data)
            datas.append(data)
    _stow(live, datas)

    resource = _poll(live, study, lambda r: r is not None and r["numberOfInstances"] == 3,
                     "the ImagingStudy")
    assert resource is not None
    assert resource["subject"] == {"reference": f"Patient/{patient}"}
    assert resource["numberOfSeries"] == 2
    (reference,) = resource["endpoint"]
    endpoint = live.http.get(f"{live.fhir}/{reference['reference']}", timeout=30)
    assert endpoint.status_code == 200, endpoint.text
    assert endpoint.json()["connectionType"]["code"] == "dicom-wado-rs"
    address = endpoint.json()["address"]
    assert address == live.dicomweb

    served: dict[str, str] = {}
    for series in resource["series"]:
        for instance in series["instance"]:
            url = (f"{address}/studies/{study}/series/{series['uid']}"
                   f"/instances/{instance['uid']}")
            response = live.http.get(url, headers={"Accept": DICOM_ANY}, timeout=60)
            assert response.status_code == 200, response.text[:300]
            (part,) = _parts(response)
            served[instance["uid"]] = _sha(part)
    assert served == sent

    deleted = live.http.delete(f"{live.dicomweb}/studies/{study}/series/{doomed}", timeout=60)
    assert deleted.status_code == 204, deleted.text
    resource = _poll(live, study, lambda r: r is not None and r["numberOfInstances"] == 2,
                     "the ImagingStudy without the deleted series")
    assert resource is not None
    assert resource["numberOfSeries"] == 1
    assert [s["uid"] for s in resource["series"]] == [kept]
    assert [s["numberOfInstances"] for s in resource["series"]] == [2]

    assert live.http.delete(f"{live.dicomweb}/studies/{study}", timeout=60).status_code == 204
    _poll(live, study, lambda r: r is None, "the ImagingStudy to be deleted")
    history = live.http.get(f"{live.fhir}/ImagingStudy/{resource['id']}/_history", timeout=30)
    # The ImagingStudy is deleted as a FHIR delete: its history keeps what it showed.
    newest, *older = history.json()["entry"]
    assert newest["request"]["method"] == "DELETE"
    assert any(e.get("resource", {}).get("numberOfInstances") == 3 for e in older)


def test_study_sent_by_c_store_appears_in_the_chart(live: RunningServer) -> None:
    """A modality's C-STORE to this installation's DIMSE listener (another process's node on
    the same database): the serving node's link picks the study up from the shared queue."""
    mrn = f"MRN-{generate_uid()[-8:]}"
    ds = make_instance(patient_id=mrn, patient_name="MODALITY^SENT")
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CT_IMAGE_STORAGE, ExplicitVRLittleEndian)
    with RunningDicom(live.node.settings) as dicom:
        assoc = ae.associate("127.0.0.1", dicom.port, ae_title=dicom.ae_title)
        assert assoc.is_established
        try:
            assert int(assoc.send_c_store(ds).Status) == 0
        finally:
            assoc.release()

    resource = _poll(live, str(ds.StudyInstanceUID), lambda r: r is not None,
                     "the ImagingStudy of the C-STORE")
    assert resource is not None
    (series,) = resource["series"]
    assert [i["uid"] for i in series["instance"]] == [ds.SOPInstanceUID]
    subject = live.http.get(f"{live.fhir}/{resource['subject']['reference']}", timeout=30).json()
    assert {"system": identifier_system(""), "value": mrn} in subject["identifier"]
    url = (f"{live.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
           f"/instances/{ds.SOPInstanceUID}")
    response = live.http.get(url, headers={"Accept": DICOM_ANY}, timeout=60)
    assert response.status_code == 200
    (part,) = _parts(response)
    assert ds.PixelData in part
