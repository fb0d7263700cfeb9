"""ATNA audit forwarding to a real syslog-over-TLS collector on loopback.

The collector is a Python ``ssl`` server with a test CA and certificates made here; it reads
RFC 5425 octet-counted frames and keeps each RFC 5424 message.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import queue
import re
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import create_engine

from conftest import free_port
from vesalius.config import Settings
from vesalius.core.errors import InvalidInput
from vesalius.security.audit import open_audit_store
from vesalius.security.audit.auditor import Auditor
from vesalius.security.audit.chain import ChainedRecord
from vesalius.security.audit.model import AuditRecord
from vesalius.security.audit.syslog import (
    MAX_VALUE_CHARS,
    SyslogForwarder,
    octet_counted,
    parse_target,
    syslog_message,
)
from vesalius.security.principal import USER, Principal

SYSLOG = re.compile(rb"<(?P<pri>\d{1,3})>1 (?P<timestamp>\S+) (?P<hostname>\S+) (?P<app>\S+) "
                    rb"(?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|(\[[^\]]*\])+) (?P<msg>.*)",
                    re.DOTALL)
BOM = b"\xef\xbb\xbf"


# -- a test PKI ------------------------------------------------------------------------

@dataclass
class Pki:
    root: Path
    ca_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(
        ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Test CA {self.root.name}")])
        now = dt.datetime.now(dt.UTC)
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(hours=1))
                   .not_valid_after(now + dt.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=True, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                       self.ca_key.public_key()), critical=False)
                   .sign(self.ca_key, hashes.SHA256()))
        self.ca_file = self.root / "ca.pem"
        self.ca_file.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, usage: x509.ObjectIdentifier) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
            .issuer_name(self.ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.ca_key.public_key()), critical=False)
            .sign(self.ca_key, hashes.SHA256()))
        certificate_path, key_path = self.root / f"{stem}.crt", self.root / f"{stem}.key"
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return certificate_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki") / "trusted")


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki") / "rogue")


# -- the collector ---------------------------------------------------------------------

class Collector:
    """An RFC 5425 receiver: TLS (client certificate required), octet-counted frames."""

    def __init__(self, server_pki: Pki, client_ca: Path, port: int, *,
                 hang_up_after: int = 0) -> None:
        self.port = port
        self.messages: queue.Queue[bytes] = queue.Queue()
        self.clients: list[str] = []
        self.handshake_errors: list[str] = []
        #: Set once the collector has closed a connection it accepted.
        self.hung_up = threading.Event()
        self._hang_up_after = hang_up_after
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(*server_pki.issue("collector",
                                                        ExtendedKeyUsageOID.SERVER_AUTH))
        self._context.load_verify_locations(client_ca)
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(10)
            try:
                with self._context.wrap_socket(raw, server_side=True) as tls:
                    peer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)
                                                          or b"")
                    common_name = peer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                    self.clients.append(str(common_name[0].value))
                    self._read(tls)
                self.hung_up.set()
            except (ssl.SSLError, OSError) as exc:
                self.handshake_errors.append(str(exc))

    def _read(self, tls: ssl.SSLSocket) -> None:
        buffer, received = b"", 0
        while not self._stop.is_set():
            try:
                chunk = tls.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            buffer += chunk
            while b" " in buffer:
                length, _, rest = buffer.partition(b" ")
                assert length.isdigit() and not length.startswith(b"0"), length[:20]
                if len(rest) < int(length):
                    break
                self.messages.put(rest[:int(length)])
                buffer = rest[int(length):]
                received += 1
                if received == self._hang_up_after:
                    return  # the collector restarts: the sender must reconnect

    def take(self, count: int, timeout: float = 30) -> list[bytes]:
        return [self.messages.get(timeout=timeout) for _ in range(count)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()


@pytest.fixture
def collector_factory(pki: Pki) -> Iterator[Callable[..., Collector]]:
    started: list[Collector] = []

    def start(port: int = 0, server_pki: Pki | None = None, hang_up_after: int = 0) -> Collector:
        collector = Collector(server_pki or pki, pki.ca_file, port or free_port(),
                              hang_up_after=hang_up_after)
        started.append(collector)
        return collector

    yield start
    for collector in started:
        collector.close()


def _settings(tmp_path: Path, pki: Pki, port: int) -> Settings:
    client_certificate, client_key = pki.issue("vesalius-node", ExtendedKeyUsageOID.CLIENT_AUTH)
    return Settings(data_dir=tmp_path / "data", syslog_target=f"127.0.0.1:{port}",
                    syslog_ca_certificates=str(pki.ca_file),
                    syslog_client_certificate=str(client_certificate),
                    syslog_client_key=str(client_key))


@pytest.fixture
def forwarders() -> Iterator[list[SyslogForwarder]]:
    running: list[SyslogForwarder] = []
    yield running
    for forwarder in running:
        forwarder.stop(timeout=1)


def _record(**changes: object) -> AuditRecord:
    record = AuditRecord(recorded=dt.datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC),
                         type="110110", action="R", outcome=0, who="user:alice",
                         address="192.0.2.10", how="fhir", observer="vesalius-test",
                         subtype="read", patient="Patient/p-42", what="Patient/p-42")
    return replace(record, **changes)  # type: ignore[arg-type]


def _parse(message: bytes) -> tuple[dict[str, bytes], ET.Element]:
    match = SYSLOG.fullmatch(message)
    assert match, message[:200]
    parts = match.groupdict()
    assert parts["msg"].startswith(BOM)
    return parts, ET.fromstring(parts["msg"][len(BOM):].decode("utf-8"))


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


# -- tests -----------------------------------------------------------------------------

def test_records_arrive_as_rfc5425_frames_of_rfc5424_messages_with_atna_xml(
        tmp_path: Path, pki: Pki, collector_factory: Callable[..., Collector],
        forwarders: list[SyslogForwarder]) -> None:
    collector = collector_factory()
    forwarder = SyslogForwarder(_settings(tmp_path, pki, collector.port))
    forwarders.append(forwarder)
    forwarder.start()
    forwarder.send(_record(), 7)
    forwarder.send(_record(type="110103", action="R", what="1.2.840.99.1.2.3",
                           subtype="", address="ws-12.example.org", how="dicomweb"), 8)
    forwarder.send(_record(type="110114", subtype="110122", action="E", outcome=4,
                           patient="", what="", outcome_desc="wrong password", how="web"), 9)
    assert forwarder.flush(30)
    read, study, login = (_parse(message) for message in collector.take(3))
    assert collector.clients == ["vesalius-node"]  # mutual TLS: our certificate was shown

    header, xml = read
    assert header["pri"] == b"85"  # facility 10 (security), severity 5 (notice)
    assert header["timestamp"] == b"2030-05-06T07:08:09.123456Z"
    assert header["app"] == b"vesalius" and header["msgid"] == b"IHE+RFC-3881"
    assert header["sd"] == b'[meta sequenceId="7"]'
    assert xml.tag == "AuditMessage"
    event = xml.find("EventIdentification")
    assert event is not None and event.get("EventActionCode") == "R"
    assert event.get("EventOutcomeIndicator") == "0"
    event_id = event.find("EventID")
    assert event_id is not None and event_id.attrib == {
        "csd-code": "110110", "codeSystemName": "DCM", "originalText": "Patient Record"}
    requestor, server = xml.findall("ActiveParticipant")
    assert requestor.get("UserID") == "user:alice" and requestor.get("UserIsRequestor") == "true"
    assert requestor.get("NetworkAccessPointID") == "192.0.2.10"
    assert requestor.get("NetworkAccessPointTypeCode") == "2"
    assert server.get("UserIsRequestor") == "false"
    source = xml.find("AuditSourceIdentification")
    assert source is not None and source.get("AuditSourceID") == "vesalius-test"
    patient = xml.findall("ParticipantObjectIdentification")[0]
    assert patient.get("ParticipantObjectID") == "Patient/p-42"
    assert (patient.get("ParticipantObjectTypeCode"),
            patient.get("ParticipantObjectTypeCodeRole")) == ("1", "1")

    _, study_xml = study
    requestor = study_xml.findall("ActiveParticipant")[0]
    assert requestor.get("NetworkAccessPointTypeCode") == "1"  # a machine name
    objects = study_xml.findall("ParticipantObjectIdentification")
    uid = objects[1].find("ParticipantObjectIDTypeCode")
    assert objects[1].get("ParticipantObjectID") == "1.2.840.99.1.2.3"
    assert uid is not None and uid.get("csd-code") == "110180"

    login_header, login_xml = login
    assert login_header["pri"] == b"84"  # a failure is a warning
    assert login_header["sd"] == b'[meta sequenceId="9"]'
    event_type = login_xml.find("EventIdentification/EventTypeCode")
    assert event_type is not None and event_type.get("csd-code") == "110122"
    assert login_xml.findtext("EventIdentification/EventOutcomeDescription") == "wrong password"
    assert login_xml.findall("ParticipantObjectIdentification") == []
    assert forwarder.stats.sent == 3 and forwarder.stats.failures == 0


def test_a_collector_that_is_down_gets_the_records_when_it_comes_back(
        tmp_path: Path, pki: Pki, collector_factory: Callable[..., Collector],
        forwarders: list[SyslogForwarder]) -> None:
    port = free_port()
    forwarder = SyslogForwarder(_settings(tmp_path, pki, port), max_backoff=0.2)
    forwarders.append(forwarder)
    forwarder.start()
    for sequence in (1, 2):
        forwarder.send(_record(), sequence)  # returns at once although nobody listens
    _wait_for(lambda: forwarder.stats.failures >= 2, "the sender retries")
    assert forwarder.stats.sent == 0 and forwarder.stats.queued == 2

    collector = collector_factory(port=port, hang_up_after=2)
    assert forwarder.flush(30)
    first = [_parse(m)[0]["sd"] for m in collector.take(2)]
    assert first == [b'[meta sequenceId="1"]', b'[meta sequenceId="2"]']

    # The collector hung up after two messages (a restart): the next one goes on a new
    # connection instead of into the closed one.
    assert collector.hung_up.wait(30)  # the sender must notice the hang-up by itself
    forwarder.send(_record(), 3)
    assert forwarder.flush(30)
    assert _parse(collector.take(1)[0])[0]["sd"] == b'[meta sequenceId="3"]'
    assert collector.clients == ["vesalius-node", "vesalius-node"]
    assert forwarder.stats.sent == 3 and forwarder.stats.dropped == 0


def test_a_collector_whose_certificate_the_configured_ca_did_not_sign_gets_nothing(
        tmp_path: Path, pki: Pki, rogue: Pki, collector_factory: Callable[..., Collector],
        forwarders: list[SyslogForwarder]) -> None:
    impostor = collector_factory(server_pki=rogue)
    forwarder = SyslogForwarder(_settings(tmp_path, pki, impostor.port), max_backoff=0.2)
    forwarders.append(forwarder)
    forwarder.start()
    forwarder.send(_record(), 1)
    _wait_for(lambda: forwarder.stats.failures >= 2, "the sender refuses the collector")
    assert not forwarder.flush(0.5)
    assert forwarder.stats.sent == 0 and forwarder.stats.queued == 1
    assert impostor.messages.empty() and impostor.clients == []
    forwarder.stop(timeout=0.5)
    assert forwarder.stats.dropped == 1 and forwarder.stats.queued == 0


def test_the_auditor_forwards_each_chained_entry_with_its_sequence(
        settings: Settings, pki: Pki, collector_factory: Callable[..., Collector],
        forwarders: list[SyslogForwarder]) -> None:
    collector = collector_factory()
    forwarder = SyslogForwarder(_settings(settings.data_dir.parent, pki, collector.port))
    forwarders.append(forwarder)
    forwarder.start()
    engine = create_engine(settings.resolved_database_url)
    store = open_audit_store(engine, settings.data_dir)
    auditor = Auditor(store, observer="vesalius-test", forward=forwarder.forward)
    alice = Principal(kind=USER, id="alice", address="127.0.0.1")
    try:
        auditor.record(alice, type="110110", action="R", outcome=0, how="fhir",
                       subtype="read", patient="p-1", what="Patient/p-1")
        auditor.record(alice, type="110112", action="E", outcome=0, how="fhir",
                       subtype="search-type", patient="p-2")
        auditor.flush()
        assert forwarder.flush(30)
    finally:
        auditor.stop()
        engine.dispose()
    received = [_parse(message) for message in collector.take(2)]
    assert [header["sd"] for header, _ in received] == [b'[meta sequenceId="1"]',
                                                       b'[meta sequenceId="2"]']
    assert [xml.find("ParticipantObjectIdentification").get("ParticipantObjectID")  # type: ignore[union-attr]
            for _, xml in received] == ["Patient/p-1", "Patient/p-2"]
    # A row that cannot be read back is counted, not raised into the auditor.
    forwarder.forward(ChainedRecord(3, "0" * 64, "0" * 64, {"recorded": "yesterday"}))
    assert forwarder.stats.dropped == 1


def test_hostile_values_still_make_well_formed_bounded_messages() -> None:
    hostile = _record(who="user:<script>&\"'\x00\x1b[31m\ud800\ufffe",
                      address="10.0.0.1\r\n<85>1 forged", what="Patient/x\"/><Evil/>",
                      outcome=8, outcome_desc="\u00e9\u4e2d\U0001f600 " * 200000,
                      patient="Patient/" + "9" * 100000)
    message = syslog_message(hostile, 2**40, hostname="host name with spaces", procid="1")
    header, xml = _parse(message)
    assert header["hostname"] == b"-"  # not a valid RFC 5424 HOSTNAME: the NILVALUE
    wrapped = (2**40 - 1) % 2147483647 + 1  # RFC 5424 §7.3.1: sequenceId wraps to 1
    assert header["sd"] == b'[meta sequenceId="%d"]' % wrapped
    requestor = xml.findall("ActiveParticipant")[0]
    assert requestor.get("UserID") == "user:<script>&\"'\ufffd\ufffd[31m\ufffd\ufffd"
    assert requestor.get("NetworkAccessPointID") == "10.0.0.1\r\n<85>1 forged"
    assert len(xml.findtext("EventIdentification/EventOutcomeDescription") or "") == MAX_VALUE_CHARS
    assert len(message) < 32768  # what DICOM PS3.15 A.6 collectors must accept
    assert b"\n<85>" not in message  # the line break is an XML character reference
    framed = octet_counted(message)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(message)


@pytest.mark.parametrize("target", ["", " ", "host:", ":6514", "host:0", "host:65536",
                                    "host:abc", "host:-1", "[::1", "[::1]x", "[::1]:",
                                    "a b:1", "host:6514:1x"])
def test_malformed_targets_are_refused(target: str) -> None:
    with pytest.raises(InvalidInput):
        parse_target(target)


def test_targets() -> None:
    assert parse_target("audit.example.org") == ("audit.example.org", 6514)
    assert parse_target("10.1.2.3:1514") == ("10.1.2.3", 1514)
    assert parse_target("[::1]:6514") == ("::1", 6514)
    assert parse_target("[fe80::1]") == ("fe80::1", 6514)
    assert parse_target("::1") == ("::1", 6514)


def test_configuration_errors_show_at_construction(tmp_path: Path, pki: Pki) -> None:
    good = _settings(tmp_path, pki, 6514)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\n\x00\xff\n")
    for broken in (replace(good, syslog_ca_certificates=str(tmp_path / "missing.pem")),
                   replace(good, syslog_ca_certificates=str(junk)),
                   replace(good, syslog_client_key=""),
                   replace(good, syslog_client_certificate=""),
                   replace(good, syslog_client_certificate=str(junk)),
                   replace(good, syslog_client_key=str(pki.ca_file)),
                   replace(good, syslog_target="nowhere:99999")):
        with pytest.raises(InvalidInput):
            SyslogForwarder(broken)


def test_without_a_target_the_forwarder_does_nothing_and_a_full_queue_drops(
        tmp_path: Path, pki: Pki) -> None:
    idle = SyslogForwarder(Settings(data_dir=tmp_path))
    idle.start()
    idle.send(_record(), 1)
    assert not idle.enabled and idle.stats.queued == 0 and idle.flush(0)
    idle.stop()

    unstarted = SyslogForwarder(_settings(tmp_path, pki, free_port()), queue_size=2)
    for sequence in range(1, 6):
        unstarted.send(_record(), sequence)  # never blocks, never raises
    assert unstarted.stats.queued == 2 and unstarted.stats.dropped == 3
    assert "127.0.0.1" in repr(unstarted) and "key" not in repr(unstarted)
