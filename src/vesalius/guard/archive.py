"""The image archive as one caller may use it over HTTP (DICOMweb, WADO-URI, the web app).

Image actions come from the policy (``view``: metadata, frames, rendered images and
thumbnails; ``download``: whole instances and bulk data; ``upload``; ``delete``), and every
study must belong to one of the caller's patients (matched through the Patient identifiers
the imaging link files studies under). A study outside them answers 404 exactly like an
unknown one; QIDO-RS only ever matches the caller's studies. Audit records use the DICOM
event codes (PS3.15 A.5.3): Query 110112, DICOM Instances Accessed 110103, Import 110107,
DICOM Study Deleted 110105, Export 110106 for downloads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from vesalius.archive.index.records import StoredInstance
from vesalius.archive.service import ArchiveService, Frame, SearchResult, StoreOutcome
from vesalius.core.errors import Forbidden, InvalidInput, NotFound
from vesalius.dicom.attributes import Level
from vesalius.guard.scope import PatientScope, ScopeResolver
from vesalius.security.audit.auditor import Auditor
from vesalius.security.policy import Policy
from vesalius.security.principal import Principal


class ArchiveGuard:
    def __init__(self, archive: ArchiveService, policy: Policy, resolver: ScopeResolver,
                 auditor: Auditor, principal: Principal, *, how: str = "dicomweb") -> None:
        self._archive = archive
        self._policy = policy
        self._resolver = resolver
        self._auditor = auditor
        self.principal = principal
        self.settings = archive.settings
        self._how = how
        self._scope: PatientScope | None = None
        self._seen: set[str] = set()

    @property
    def scope(self) -> PatientScope:
        if self._scope is None:
            self._scope = self._resolver.resolve(self.principal)
        return self._scope

    def _audit(self, type: str, action: str, outcome: int, what: str = "",
               desc: str = "") -> None:
        self._auditor.record(self.principal, type=type, action=action, outcome=outcome,
                             how=self._how, what=what, outcome_desc=desc)

    def require(self, action: str, what: str = "") -> None:
        """Refuse (403, audited) unless the caller's role and scopes allow the image
        ``action``; patient scope is checked per study on top."""
        if not self._policy.image_allowed(self.principal, action):
            self._audit("110113", "E", 4, what, f"image action {action} not allowed")
            raise Forbidden(f"you may not {action} images")

    def _study(self, study_uid: str, type: str, action: str) -> None:
        """The study must be one of the caller's; audited once per study and request."""
        if self.scope.identities is not None and not self.scope.has_identity(
                self._archive.study_patient(study_uid)):
            self._audit(type, action, 4, study_uid, "not found")
            raise NotFound("no such study, series or instance")
        if study_uid not in self._seen:
            self._seen.add(study_uid)
            self._audit(type, action, 0, study_uid)

    # -- finding -----------------------------------------------------------------------------
    def search(self, level: Level, params: Sequence[tuple[str, str]], **options: Any
               ) -> SearchResult:
        self.require("view")
        result = self._archive.search(level, params, patients=self.scope.identities, **options)
        self._audit("110112", "E", 0, level.name)
        return result

    def metadata_texts(self, study_uid: str, series_uid: str | None = None,
                       sop_uid: str | None = None) -> list[str]:
        self.require("view", study_uid)
        self._study(study_uid, "110103", "R")
        return self._archive.metadata_texts(study_uid, series_uid, sop_uid)

    def instances(self, study_uid: str, series_uid: str | None = None,
                  sop_uid: str | None = None) -> list[StoredInstance]:
        self.require("view", study_uid)
        self._study(study_uid, "110103", "R")
        return self._archive.instances(study_uid, series_uid, sop_uid)

    def frames(self, study_uid: str, series_uid: str, sop_uid: str, numbers: Sequence[int],
               *, native: bool) -> list[Frame]:
        self.require("view", study_uid)
        self._study(study_uid, "110103", "R")
        return self._archive.frames(study_uid, series_uid, sop_uid, numbers, native=native)

    def dataset(self, instance: StoredInstance) -> Dataset:
        self._study(instance.study_uid, "110103", "R")
        return self._archive.dataset(instance)

    # -- whole objects leave the archive -----------------------------------------------------
    def _download(self, instance: StoredInstance) -> None:
        self.require("download", instance.study_uid)
        self._study(instance.study_uid, "110106", "R")

    def stream(self, instance: StoredInstance) -> tuple[int, Iterator[bytes]]:
        self._download(instance)
        return self._archive.stream(instance)

    def read_bytes(self, instance: StoredInstance) -> bytes:
        self._download(instance)
        return self._archive.read_bytes(instance)

    def bulkdata(self, study_uid: str, series_uid: str, sop_uid: str, tag_text: str) -> bytes:
        self.require("download", study_uid)
        self._study(study_uid, "110106", "R")
        return self._archive.bulkdata(study_uid, series_uid, sop_uid, tag_text)

    # -- changes -----------------------------------------------------------------------------
    def store_file(self, path: Path, **options: Any) -> StoreOutcome:
        self.require("upload")
        identity = self._identity_of(path) if self.scope.identities is not None else None
        if self.scope.identities is not None and not self.scope.has_identity(identity):
            self._audit("110107", "C", 4, "", "patient not among the caller's patients")
            raise NotFound("the patient of this instance is not known")
        outcome = self._archive.store_file(path, **options)
        self._audit("110107", "C", 0, outcome.study_uid)
        return outcome

    @staticmethod
    def _identity_of(path: Path) -> tuple[str, str] | None:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True,
                                 specific_tags=["PatientID", "IssuerOfPatientID"])
        except Exception as exc:
            raise InvalidInput("not a readable DICOM instance") from exc
        return str(ds.get("PatientID", "") or ""), str(ds.get("IssuerOfPatientID", "") or "")

    def delete(self, study_uid: str, series_uid: str | None = None,
               sop_uid: str | None = None, *, reason: str = "") -> None:
        self.require("delete", study_uid)
        self._study(study_uid, "110105", "D")
        self._archive.delete(study_uid, series_uid, sop_uid, reason=reason)
