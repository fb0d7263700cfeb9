"""Modality Worklist identifiers (PS3.4 Annex K) ⇄ scheduled procedure steps."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from vesalius.worklist.service import ScheduledStep

_SPS_KEYS = ("Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
             "ScheduledProcedureStepStartTime", "ScheduledProcedureStepID",
             "ScheduledProcedureStepStatus")
_TOP_KEYS = ("PatientName", "PatientID", "IssuerOfPatientID", "AccessionNumber",
             "RequestedProcedureID", "StudyInstanceUID")


def worklist_params(identifier: Dataset) -> list[tuple[str, str]]:
    """Matching keys from the top level and the first SPS sequence item."""
    params: list[tuple[str, str]] = []
    for keyword in _TOP_KEYS:
        value = identifier.get(keyword)
        if value not in (None, ""):
            params.append((keyword, str(value)))
    sequence = identifier.get("ScheduledProcedureStepSequence")
    if sequence:
        item = sequence[0]
        for keyword in _SPS_KEYS:
            value = item.get(keyword)
            if value not in (None, ""):
                params.append((keyword, str(value)))
    return params


def worklist_item(step: ScheduledStep) -> Dataset:
    """A worklist response item with the return keys of PS3.4 Table K.6-1."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = step.patient_name
    ds.PatientID = step.patient_id
    ds.IssuerOfPatientID = step.issuer
    ds.PatientBirthDate = step.birth_date
    ds.PatientSex = step.sex
    ds.AccessionNumber = step.accession_number
    ds.ReferringPhysicianName = step.referring_physician_name
    ds.RequestedProcedureID = step.requested_procedure_id
    ds.RequestedProcedureDescription = step.requested_procedure_description
    ds.StudyInstanceUID = step.study_uid
    sps = Dataset()
    sps.Modality = step.modality
    sps.ScheduledStationAETitle = step.station_ae
    sps.ScheduledProcedureStepStartDate = step.start_date
    sps.ScheduledProcedureStepStartTime = step.start_time
    sps.ScheduledPerformingPhysicianName = ""
    sps.ScheduledProcedureStepDescription = step.description
    sps.ScheduledProcedureStepID = step.sps_id
    sps.ScheduledProcedureStepStatus = step.status
    ds.ScheduledProcedureStepSequence = DicomSequence([sps])
    return ds
