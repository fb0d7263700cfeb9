"""The security layer between the edges and the services (see docs/architecture.md).

Edges authenticate a caller into a :class:`~vesalius.security.principal.Principal`; the
guard answers for that principal: it asks the pure policy functions
(``vesalius.security.policy``) whether the action is allowed, confines what the services
return to the caller's patients (``scope``), and records every access and change, allowed or
refused, in the audit trail. Route code never decides access: it asks ``Guard.record(…)`` and
``Guard.archive(…)`` for the services bound to its caller.
"""

from __future__ import annotations

from vesalius.archive.service import ArchiveService
from vesalius.guard.archive import ArchiveGuard
from vesalius.guard.record import RecordGuard
from vesalius.guard.scope import Grants, PatientScope, ScopeResolver
from vesalius.record.service import RecordService
from vesalius.security.audit.auditor import Auditor
from vesalius.security.policy import Policy
from vesalius.security.principal import Principal

__all__ = ["ArchiveGuard", "Guard", "PatientScope", "RecordGuard"]


class Guard:
    def __init__(self, record: RecordService, archive: ArchiveService, policy: Policy,
                 auditor: Auditor, break_glass: Grants, *, consent_default: str) -> None:
        self.policy = policy
        self.auditor = auditor
        self._record = record
        self._archive = archive
        self.resolver = ScopeResolver(record, policy, break_glass,
                                      consent_default=consent_default)

    def record(self, principal: Principal) -> RecordGuard:
        return RecordGuard(self._record, self.policy, self.resolver, self.auditor, principal)

    def archive(self, principal: Principal, how: str = "dicomweb") -> ArchiveGuard:
        return ArchiveGuard(self._archive, self.policy, self.resolver, self.auditor, principal,
                            how=how)
