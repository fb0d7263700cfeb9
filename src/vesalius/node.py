"""One Vesalius installation's services, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from vesalius.archive.events import EventBus
from vesalius.archive.factory import build_archive
from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.database.engine import make_engines
from vesalius.database.write_lock import WriteLock
from vesalius.guard import Guard
from vesalius.imaging_link.link import ImagingLink
from vesalius.network.registry import AERegistry
from vesalius.record.service import RecordOptions, RecordService
from vesalius.security.audit import open_audit_store
from vesalius.security.audit.auditor import Auditor
from vesalius.security.audit.syslog import SyslogForwarder
from vesalius.security.authn import AuthService
from vesalius.security.authn.builtin import ensure_web_client
from vesalius.security.break_glass import BreakGlass
from vesalius.security.policy import load_policy
from vesalius.worklist.service import WorklistService


@dataclass
class Node:
    settings: Settings
    archive: ArchiveService
    registry: AERegistry
    worklist: WorklistService
    record: RecordService
    link: ImagingLink
    auditor: Auditor
    auth: AuthService
    break_glass: BreakGlass
    #: The security layer every edge goes through (policy, patient scope, audit).
    guard: Guard


def record_options(settings: Settings) -> RecordOptions:
    return RecordOptions(default_count=settings.fhir_default_count,
                         max_count=settings.fhir_max_count,
                         referential_integrity=settings.fhir_referential_integrity,
                         max_bundle_entries=settings.fhir_max_bundle_entries,
                         base_url=f"{settings.base_url}/fhir")


def build_node(settings: Settings) -> Node:
    """Archive and record share one database (a merge re-files both in one transaction);
    the imaging link subscribes to both. Call ``node.link.start()`` in serving processes."""
    reader, writer = make_engines(settings)
    archive = build_archive(settings, events=EventBus(), engines=(reader, writer))
    record = RecordService(reader, writer, options=record_options(settings))
    worklist = WorklistService(writer)
    link = ImagingLink(settings, archive, record, worklist)
    auditor = build_auditor(settings, reader, writer)
    auth = AuthService(writer, settings, auditor)
    auth.create()
    ensure_web_client(auth)
    break_glass = BreakGlass(writer, auditor)
    break_glass.create()
    guard = Guard(record, archive, load_policy(settings.policy_file), auditor, break_glass,
                  consent_default=settings.consent_default)
    return Node(settings, archive, AERegistry(writer), worklist, record, link, auditor, auth,
                break_glass=break_glass, guard=guard)


def build_auditor(settings: Settings, reader: Engine, writer: Engine) -> Auditor:
    store = open_audit_store(writer, settings.data_dir, audit_key_file=settings.audit_key_file,
                             checkpoint_every=settings.audit_checkpoint_every,
                             lock=WriteLock(writer), reader=reader)
    forwarder = SyslogForwarder(settings)
    forwarder.start()
    return Auditor(store, observer=settings.ae_title, forward=forwarder.forward,
                   on_stop=forwarder.stop)
