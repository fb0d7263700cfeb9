"""QIDO-RS matching over HTTP on SQLite and PostgreSQL (PS3.18 §10.6, PS3.4 §C.2.2.2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom.uid import generate_uid

from conftest import RunningServer
from data_factory import make_instance, write
from vesalius.archive.service import ArchiveService


@pytest.fixture
def populated(archive: ArchiveService, server: RunningServer, tmp_path) -> Iterator[dict[str, str]]:
    """Four studies with varied names, dates, modalities; returns their UIDs by label."""
    uids: dict[str, str] = {}
    specs = [
        ("muller", dict(patient_name="Müller^Zoë", patient_id="MRN1", issuer="HOSP-A",
                        study_date="20250110", study_time="083000", accession="ACC1",
                        modality="CT", description="CT HEAD")),
        ("smith", dict(patient_name="SMITH^JOHN", patient_id="MRN2", issuer="HOSP-A",
                       study_date="20250615", study_time="141500", accession="ACC2",
                       modality="MR", description="MR KNEE")),
        ("smithb", dict(patient_name="Smithson^Anna", patient_id="MRN2", issuer="HOSP-B",
                        study_date="20260101", study_time="235959", accession="ACC3",
                        modality="CT", description="CT CHEST")),
        ("doe", dict(patient_name="DOE^JANE", patient_id="MRN4", issuer="HOSP-A",
                     study_date="20240229", study_time="000000", accession="ACC4",
                     modality="US", description="US ABDOMEN")),
    ]
    for label, spec in specs:
        study_uid = generate_uid()
        uids[label] = study_uid
        series_uid = generate_uid()
        for n in range(1, 3):
            archive.store_file(write(make_instance(study_uid=study_uid, series_uid=series_uid,
                                                   instance_number=n, **spec), tmp_path))
    # A second series with another modality in the Smith study.
    archive.store_file(write(make_instance(study_uid=uids["smith"], modality="SR",
                                           series_number=2, patient_name="SMITH^JOHN",
                                           patient_id="MRN2", issuer="HOSP-A",
                                           study_date="20250615"), tmp_path))
    yield uids


def _studies(server: RunningServer, **params: str) -> list[dict]:
    response = server.http.get(f"{server.dicomweb}/studies", params=params,
                               headers={"Accept": "application/dicom+json"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    return response.json()


def _uids(results: list[dict]) -> set[str]:
    return {r["0020000D"]["Value"][0] for r in results}


def test_all_studies_with_default_return_keys(server, populated) -> None:
    results = _studies(server)
    assert _uids(results) == set(populated.values())
    smith = next(r for r in results if r["0020000D"]["Value"][0] == populated["smith"])
    assert smith["00080061"]["Value"] == ["MR", "SR"]  # ModalitiesInStudy
    assert smith["00201206"]["Value"] == [2]  # NumberOfStudyRelatedSeries
    assert smith["00201208"]["Value"] == [3]  # NumberOfStudyRelatedInstances
    assert smith["00100010"]["Value"] == [{"Alphabetic": "SMITH^JOHN"}]
    assert smith["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{populated['smith']}")


def test_single_value_and_keyword_or_tag(server, populated) -> None:
    assert _uids(_studies(server, PatientID="MRN1")) == {populated["muller"]}
    assert _uids(_studies(server, **{"00100020": "MRN1"})) == {populated["muller"]}
    assert _uids(_studies(server, AccessionNumber="ACC4")) == {populated["doe"]}
    assert _studies(server, PatientID="mrn1") == []  # case-sensitive for LO


def test_same_patient_id_two_issuers_are_two_patients(server, populated) -> None:
    both = _studies(server, PatientID="MRN2")
    assert _uids(both) == {populated["smith"], populated["smithb"]}
    one = _studies(server, PatientID="MRN2", IssuerOfPatientID="HOSP-B")
    assert _uids(one) == {populated["smithb"]}
    patients = server.http.get(f"{server.dicomweb}/patients", params={"PatientID": "MRN2"}).json()
    assert len(patients) == 2


def test_wildcards_and_person_name_case(server, populated) -> None:
    assert _uids(_studies(server, PatientName="SMITH*")) == {populated["smith"],
                                                             populated["smithb"]}
    assert _uids(_studies(server, PatientName="smith^joh?")) == {populated["smith"]}
    assert _uids(_studies(server, AccessionNumber="ACC?")) == set(populated.values())
    # Percent-encoded wildcard, as OHIF sends it.
    response = server.http.get(f"{server.dicomweb}/studies?PatientName=DOE%2A")
    assert _uids(response.json()) == {populated["doe"]}


def test_fuzzy_matching_is_case_and_accent_insensitive(server, populated) -> None:
    assert _studies(server, PatientName="zoe") == []
    assert _uids(_studies(server, PatientName="zoe", fuzzymatching="true")) == {
        populated["muller"]}
    assert _uids(_studies(server, PatientName="MULL", fuzzymatching="true")) == {
        populated["muller"]}
    assert _uids(_studies(server, PatientName="anna smith", fuzzymatching="true")) == {
        populated["smithb"]}


def test_date_and_time_ranges(server, populated) -> None:
    assert _uids(_studies(server, StudyDate="20250101-20251231")) == {populated["muller"],
                                                                      populated["smith"]}
    assert _uids(_studies(server, StudyDate="20251231-")) == {populated["smithb"]}
    assert _uids(_studies(server, StudyDate="-20241231")) == {populated["doe"]}
    assert _uids(_studies(server, StudyTime="0800-1500")) == {populated["muller"],
                                                              populated["smith"]}
    assert _uids(_studies(server, StudyDate="20240229")) == {populated["doe"]}


def test_lists_and_uid_lists(server, populated) -> None:
    assert _uids(_studies(server, AccessionNumber="ACC1,ACC4")) == {populated["muller"],
                                                                    populated["doe"]}
    uid_list = f"{populated['smith']},{populated['doe']}"
    assert _uids(_studies(server, StudyInstanceUID=uid_list)) == {populated["smith"],
                                                                  populated["doe"]}
    assert _uids(_studies(server, StudyInstanceUID=uid_list.replace(",", "\\"))) == {
        populated["smith"], populated["doe"]}


def test_modalities_in_study(server, populated) -> None:
    assert _uids(_studies(server, ModalitiesInStudy="CT")) == {populated["muller"],
                                                               populated["smithb"]}
    assert _uids(_studies(server, ModalitiesInStudy="SR")) == {populated["smith"]}
    assert _uids(_studies(server, ModalitiesInStudy="US,MR")) == {populated["doe"],
                                                                  populated["smith"]}


def test_includefield_keywords_tags_comma_list_and_all(server, populated) -> None:
    result = _studies(server, PatientID="MRN1", includefield="PatientBirthDate")[0]
    assert result["00100030"]["Value"] == ["19800101"]
    # OHIF sends one comma-separated list of tags.
    result = _studies(server, PatientID="MRN1", includefield="00081030,00080060")[0]
    assert result["00081030"]["Value"] == ["CT HEAD"]
    everything = _studies(server, PatientID="MRN1", includefield="all")[0]
    assert everything["00080090"]["Value"] == [{"Alphabetic": "REF^DOCTOR"}]


def test_limit_offset_and_warning(server, populated) -> None:
    response = server.http.get(f"{server.dicomweb}/studies", params={"limit": "2"})
    assert len(response.json()) == 2
    assert "299" in response.headers["warning"]
    rest = server.http.get(f"{server.dicomweb}/studies", params={"limit": "2", "offset": "2"})
    assert len(rest.json()) == 2
    assert "warning" not in rest.headers
    assert _uids(response.json()) | _uids(rest.json()) == set(populated.values())


def test_series_and_instance_levels(server, populated) -> None:
    study = populated["smith"]
    series = server.http.get(f"{server.dicomweb}/studies/{study}/series").json()
    assert sorted(s["00080060"]["Value"][0] for s in series) == ["MR", "SR"]
    mr = next(s for s in series if s["00080060"]["Value"] == ["MR"])
    assert mr["00201209"]["Value"] == [2]  # NumberOfSeriesRelatedInstances
    series_uid = mr["0020000E"]["Value"][0]
    instances = server.http.get(
        f"{server.dicomweb}/studies/{study}/series/{series_uid}/instances").json()
    assert [i["00200013"]["Value"][0] for i in instances] == [1, 2]
    assert instances[0]["00280010"]["Value"] == [16]
    # Top-level searches with attributes of a higher level.
    all_ct_series = server.http.get(f"{server.dicomweb}/series", params={"Modality": "CT"}).json()
    assert len(all_ct_series) == 2
    by_patient = server.http.get(f"{server.dicomweb}/instances",
                                 params={"PatientID": "MRN4"}).json()
    assert len(by_patient) == 2
    by_number = server.http.get(f"{server.dicomweb}/studies/{study}/instances",
                                params={"InstanceNumber": "2"}).json()
    assert len(by_number) == 1


def test_unsupported_key_is_reported_not_silently_matched(server, populated) -> None:
    response = server.http.get(f"{server.dicomweb}/studies", params={"PatientWeight": "70"})
    assert response.status_code == 200
    assert "PatientWeight" in response.headers["warning"]
    assert len(response.json()) == 4


def test_no_match_is_an_empty_array(server, populated) -> None:
    response = server.http.get(f"{server.dicomweb}/studies", params={"PatientID": "nobody"})
    assert response.status_code == 200 and response.json() == []
