"""After a merge re-files a study, WADO-RS and WADO-URI serve it with the corrected identity."""

from __future__ import annotations

from pathlib import Path

import pydicom
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from conftest import RunningServer
from data_factory import make_instance, write
from vesalius.archive.reconcile import PatientIdentity, refile_studies


def test_refiled_study_is_served_corrected(server: RunningServer, tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    sops = []
    for n in range(2):
        ds = make_instance(patient_id="TMP-9", patient_name="OLD^NAME", study_uid=study,
                           series_uid=series, instance_number=n + 1)
        server.archive.store_file(write(ds, tmp_path))
        sops.append(str(ds.SOPInstanceUID))
    with server.archive.writer.engine.begin() as conn:
        refile_studies(conn, [study], PatientIdentity("MRN-9", "HOSP", "NEW^NAME", "", "O"))

    client = DICOMwebClient(server.dicomweb, headers=server.headers)
    for ds in client.retrieve_study(study):  # multipart/related; Content-Length must be right
        assert (ds.PatientID, str(ds.PatientName)) == ("MRN-9", "NEW^NAME")
    everything = client.retrieve_study(study, media_types=(("application/dicom", "*"),))
    assert {d.PatientID for d in everything} == {"MRN-9"}
    response = server.http.get(f"{server.base}/wado", params={
              "requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sops[0],
              "contentType": "application/dicom"}, timeout=30)
    assert response.status_code == 200
    served = pydicom.dcmread(pydicom.filebase.DicomBytesIO(response.content))
    assert served.PatientID == "MRN-9"
