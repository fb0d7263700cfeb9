"""Forward audit records to an IHE ATNA Audit Record Repository: syslog over TLS.

Each record of the chained log is sent as an IHE ITI-20 "Record Audit Event" message
(https://profiles.ihe.net/ITI/TF/Volume2/ITI-20.html):

- the content is a DICOM audit message (PS3.15 §A.5,
  https://dicom.nema.org/medical/dicom/current/output/chtml/part15/sect_A.5.html) in XML,
  the RFC 3881 schema as DICOM extends it, built by :func:`audit_message`;
- it travels as the MSG of an RFC 5424 syslog message (facility 10 "security/authorization",
  severity 5 "notice", or 4 "warning" for a failed outcome, so PRI ``<85>``/``<84>``;
  MSGID ``IHE+RFC-3881``; the log entry's sequence number in the RFC 5424 §7.3.1
  ``[meta sequenceId=…]`` element), built by :func:`syslog_message`;
- framed by octet counting (RFC 5425 §4.3, ``MSG-LEN SP SYSLOG-MSG``) over TLS 1.2+
  (DICOM PS3.15 §A.6), verifying the collector against ``syslog_ca_certificates`` (and its
  name against ``syslog_target``) and presenting ``syslog_client_certificate`` when one is
  configured, for the mutual node authentication ATNA asks for.

The database chain is the record of truth; forwarding is a best-effort copy. The
:class:`SyslogForwarder` therefore never blocks or fails the request path: ``send`` only puts
the record on a bounded queue; a background thread renders and delivers it, reconnecting
with exponential back-off while the collector is down. When the queue is full the new record
is dropped and counted (it is still in the chain, and ``vesalius audit`` can export it).
Failures are logged with the collector's address and the error, never with record content.

Free-text values are cut at ``MAX_VALUE_CHARS`` characters and characters XML 1.0 cannot
carry are replaced, so one hostile value cannot make a message the collector rejects.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import select
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from datetime import UTC

from vesalius.config import Settings
from vesalius.core.errors import InvalidInput
from vesalius.security.audit.chain import ChainedRecord
from vesalius.security.audit.model import (
    DCM,
    EVENT_TYPES,
    SUBTYPES,
    SURFACES,
    AuditRecord,
    Code,
)
from vesalius.security.tls import harden

log = logging.getLogger(__name__)

#: The syslog-over-TLS port (RFC 5425 §4.1), used when ``syslog_target`` names none.
DEFAULT_PORT = 6514
#: ``security/authorization messages`` (RFC 5424 §6.2.1; DICOM PS3.15 §A.6).
FACILITY = 10
SEVERITY_NOTICE = 5
SEVERITY_WARNING = 4
APP_NAME = "vesalius"
MSGID = "IHE+RFC-3881"
BOM = "\ufeff".encode()
#: Longest free-text value put in a message: DICOM PS3.15 §A.6 only guarantees that a
#: collector takes 32768 octets, and a message carries a handful of such values.
MAX_VALUE_CHARS = 2048
#: ``meta sequenceId`` wraps to 1 after this (RFC 5424 §7.3.1).
MAX_SEQUENCE_ID = 2147483647
RFC_3881 = "RFC-3881"

# XML 1.0 §2.2 Char: everything else (most C0 controls, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DICOM_UID = re.compile(r"[0-9]+(\.[0-9]+)+")
_PRINTUSASCII = re.compile(r"[\x21-\x7e]+")


def _text(value: str) -> str:
    """``value`` fit for XML 1.0 and of bounded length."""
    if len(value) > MAX_VALUE_CHARS:
        value = value[:MAX_VALUE_CHARS - 1] + "\u2026"
    return _NOT_XML_CHAR.sub("\ufffd", value)


def _code_system_name(system: str) -> str:
    """The ``codeSystemName`` DICOM audit messages use: ``DCM`` for DICOM codes."""
    return "DCM" if system == DCM else system


def _coded(parent: ET.Element, tag: str, code: Code) -> None:
    ET.SubElement(parent, tag, {"csd-code": code.code,
                                "codeSystemName": _code_system_name(code.system),
                                "originalText": code.display})


def _participant_object(parent: ET.Element, object_id: str, type_code: str, role: str,
                        id_type: tuple[str, str, str]) -> None:
    """A ``ParticipantObjectIdentification`` (RFC 3881 §5.5, DICOM PS3.15 §A.5.1)."""
    element = ET.SubElement(parent, "ParticipantObjectIdentification", {
        "ParticipantObjectID": _text(object_id), "ParticipantObjectTypeCode": type_code,
        "ParticipantObjectTypeCodeRole": role})
    code, system, text = id_type
    ET.SubElement(element, "ParticipantObjectIDTypeCode",
                  {"csd-code": code, "codeSystemName": system, "originalText": text})


def audit_message(record: AuditRecord) -> str:
    """``record`` as a DICOM audit message (the ``AuditMessage`` XML element).

    The requestor is the active participant with ``UserIsRequestor="true"`` (DCM 110153
    "Source Role ID") and its network address; the observing installation is the other
    participant (DCM 110152) and the audit source. The patient is a participant object of
    type Person/Patient identified by "Patient Number" (RFC 3881 §5.5.4 code 2); a study is
    a System Object identified by its Study Instance UID (DCM 110180) as §A.5.2 shows; any
    other resource is identified by its relative URI (RFC 3881 code 12).
    """
    root = ET.Element("AuditMessage")
    event = ET.SubElement(root, "EventIdentification", {
        "EventActionCode": record.action,
        "EventDateTime": record.recorded.astimezone(UTC).isoformat(timespec="microseconds"),
        "EventOutcomeIndicator": str(record.outcome)})
    _coded(event, "EventID", EVENT_TYPES[record.type])
    if record.subtype:
        _coded(event, "EventTypeCode", SUBTYPES[record.subtype])
    if record.outcome_desc:
        ET.SubElement(event, "EventOutcomeDescription").text = _text(record.outcome_desc)

    requestor = {"UserID": _text(record.who), "UserIsRequestor": "true"}
    if record.address:
        try:
            ipaddress.ip_address(record.address)
            access_point_type = "2"  # IP address
        except ValueError:
            access_point_type = "1"  # machine name
        requestor |= {"NetworkAccessPointID": _text(record.address),
                      "NetworkAccessPointTypeCode": access_point_type}
    participant = ET.SubElement(root, "ActiveParticipant", requestor)
    _coded(participant, "RoleIDCode", Code(DCM, "110153", "Source Role ID"))
    server = ET.SubElement(root, "ActiveParticipant",
                           {"UserID": _text(record.observer), "UserIsRequestor": "false"})
    _coded(server, "RoleIDCode", Code(DCM, "110152", "Destination Role ID"))

    source = ET.SubElement(root, "AuditSourceIdentification",
                           {"AuditSourceID": _text(record.observer)})
    source_type, source_display = SURFACES[record.how]
    _coded(source, "AuditSourceTypeCode", Code(DCM, source_type, source_display))

    if record.patient:
        _participant_object(root, record.patient, "1", "1", ("2", RFC_3881, "Patient Number"))
    if record.what:
        if _DICOM_UID.fullmatch(record.what):
            _participant_object(root, record.what, "2", "3",
                                ("110180", "DCM", "Study Instance UID"))
        else:
            _participant_object(root, record.what, "2", "4", ("12", RFC_3881, "URI"))
    return ET.tostring(root, encoding="unicode")


def _header_field(value: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, or the NILVALUE."""
    return value[:limit] if _PRINTUSASCII.fullmatch(value) else "-"


def syslog_message(record: AuditRecord, sequence: int, *, hostname: str,
                   procid: str) -> bytes:
    """``record`` as one RFC 5424 SYSLOG-MSG carrying the audit message XML (UTF-8, BOM)."""
    severity = SEVERITY_NOTICE if record.outcome == 0 else SEVERITY_WARNING
    timestamp = record.recorded.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sequence_id = (sequence - 1) % MAX_SEQUENCE_ID + 1
    header = (f"<{FACILITY * 8 + severity}>1 {timestamp} {_header_field(hostname, 255)} "
              f"{APP_NAME} {_header_field(procid, 128)} {MSGID} "
              f'[meta sequenceId="{sequence_id}"] ')
    return header.encode("ascii") + BOM + audit_message(record).encode("utf-8")


def octet_counted(message: bytes) -> bytes:
    """RFC 5425 §4.3 framing: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d " % len(message) + message


def parse_target(target: str) -> tuple[str, int]:
    """``host:port``, ``[IPv6 address]:port``, or a host or IPv6 address alone (port 6514)."""
    text = target.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidInput(f"syslog_target {target!r} is not [address]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
        if ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError as exc:
                raise InvalidInput(f"syslog_target {target!r} is not host:port") from exc
    if not host or any(c.isspace() for c in host):
        raise InvalidInput(f"syslog_target {target!r} names no host")
    if port_text is None:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInput(f"syslog_target {target!r} has an invalid port")
    return host, int(port_text)


def client_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+ context that verifies the collector and presents our certificate, if any."""
    if bool(settings.syslog_client_certificate) != bool(settings.syslog_client_key):
        raise InvalidInput("syslog_client_certificate and syslog_client_key go together")
    try:
        context = ssl.create_default_context(cafile=settings.syslog_ca_certificates or None)
        if settings.syslog_client_certificate:
            context.load_cert_chain(settings.syslog_client_certificate,
                                    settings.syslog_client_key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(f"cannot load the syslog TLS certificates: {exc}") from exc
    return harden(context)


@dataclass(frozen=True)
class ForwarderStats:
    """Counters since start: delivered messages, records dropped, failed attempts."""

    sent: int
    dropped: int
    failures: int
    queued: int


class SyslogForwarder:
    """Send audit records to ``settings.syslog_target`` from a background thread.

    Inert (``enabled`` is False, ``send`` does nothing) when no target is configured.
    """

    def __init__(self, settings: Settings, *, queue_size: int = 10000,
                 max_backoff: float = 30.0, timeout: float = 10.0) -> None:
        self.enabled = bool(settings.syslog_target)
        self.host, self.port = (parse_target(settings.syslog_target) if self.enabled
                                else ("", 0))
        self._context = client_context(settings) if self.enabled else None
        self._queue_size = queue_size
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._hostname = socket.gethostname()
        self._procid = str(os.getpid())
        self._items: deque[tuple[AuditRecord, int]] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._socket: ssl.SSLSocket | None = None
        self._sent = self._dropped = self._failures = 0

    def __repr__(self) -> str:
        return f"SyslogForwarder({self.host}:{self.port}, enabled={self.enabled})"

    @property
    def stats(self) -> ForwarderStats:
        with self._changed:
            return ForwarderStats(self._sent, self._dropped, self._failures, len(self._items))

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="audit-syslog", daemon=True)
        self._thread.start()

    def send(self, record: AuditRecord, sequence: int) -> None:
        """Queue ``record`` (entry ``sequence`` of the chain); never blocks, never raises."""
        if not self.enabled:
            return
        with self._changed:
            if self._stopping or len(self._items) >= self._queue_size:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    log.warning("audit forwarding to %s:%d is behind: %d record(s) dropped "
                                "(they remain in the audit log)", self.host, self.port,
                                self._dropped)
                return
            self._items.append((record, sequence))
            self._changed.notify_all()

    def forward(self, entry: ChainedRecord) -> None:
        """The ``Auditor``'s ``forward`` hook: ``send`` one entry just appended to the chain."""
        try:
            record = AuditRecord.from_columns(entry.columns)
        except InvalidInput:
            with self._changed:
                self._dropped += 1
            log.warning("audit entry %d could not be read for forwarding", entry.sequence)
            return
        self.send(record, entry.sequence)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far was delivered; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._items or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then close the connection."""
        thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        thread.join(timeout)
        self._thread = None
        with self._changed:
            if self._items:
                self._dropped += len(self._items)
                log.warning("audit forwarding stopped with %d record(s) undelivered "
                            "(they remain in the audit log)", len(self._items))
                self._items.clear()

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._changed:
                while not self._items and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    break
                record, sequence = self._items[0]
                self._busy = True
            frame = octet_counted(syslog_message(record, sequence, hostname=self._hostname,
                                                 procid=self._procid))
            error = self._deliver(frame)
            if error is not None:
                # Warn once per outage; the retries of the same outage go to debug.
                log.log(logging.DEBUG if backoff else logging.WARNING,
                        "audit forwarding to %s:%d failed (%s: %s); retrying",
                        self.host, self.port, type(error).__name__, error)
            elif backoff:
                log.info("audit forwarding to %s:%d resumed", self.host, self.port)
            with self._changed:
                self._busy = False
                if error is None:
                    self._items.popleft()
                    self._sent += 1
                    backoff = 0.0
                else:
                    self._failures += 1
                    backoff = min(self._max_backoff, max(0.5, backoff * 2))
                    resume = time.monotonic() + backoff
                    while not self._stopping and (left := resume - time.monotonic()) > 0:
                        self._changed.wait(left)
                self._changed.notify_all()
        self._close()

    def _deliver(self, frame: bytes) -> OSError | None:
        """Write one frame; the error when it could not be written."""
        try:
            self._connection().sendall(frame)
        except OSError as exc:  # ssl.SSLError and socket.timeout included
            self._close()
            return exc
        return None

    def _connection(self) -> ssl.SSLSocket:
        """The open connection; a new one when there is none or the collector closed it.

        Before reusing a connection, what the collector sent is read without waiting: TLS
        1.3 session tickets are fine, an end of stream or an alert means it closed the
        connection (RFC 5425 §4.3: it sends no syslog data), so reconnect rather than write
        into a dead one.
        """
        if self._socket is not None:
            if self._alive(self._socket):
                return self._socket
            self._close()
        assert self._context is not None
        raw = socket.create_connection((self.host, self.port), timeout=self._timeout)
        try:
            self._socket = self._context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        return self._socket

    def _alive(self, sock: ssl.SSLSocket) -> bool:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return True
        sock.setblocking(False)
        try:
            while sock.recv(4096):
                pass  # a collector has nothing to say; discard it
            return False  # end of stream
        except ssl.SSLWantReadError:
            return True  # only TLS records without data (tickets, key updates)
        except OSError:
            return False
        finally:
            sock.settimeout(self._timeout)

    def _close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None
