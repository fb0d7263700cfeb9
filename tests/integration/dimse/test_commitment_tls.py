"""Storage Commitment Push Model (PS3.4 Annex J) and DICOM TLS (PS3.15 Annex B.9)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import queue
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel, Verification

from conftest import RunningDicom, free_port
from data_factory import CT_IMAGE_STORAGE, make_instance, write
from integration.dimse.dimse_support import (
    LOCALHOST,
    blob_path,
    dataset_sha,
    dcmtk,
    instance_count,
    register,
    reset_node_tables,
    stored_bytes,
)
from vesalius.config import Settings

COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"


@pytest.fixture(autouse=True)
def _fresh_tables(settings: Settings) -> None:
    reset_node_tables(settings)


# -- storage commitment ----------------------------------------------------------------

@pytest.fixture
def report_listener() -> Iterator[tuple[int, queue.Queue[tuple[int, Dataset]]]]:
    """A pynetdicom AE that accepts our N-EVENT-REPORT (we act as SCP on its association)."""
    reports: queue.Queue[tuple[int, Dataset]] = queue.Queue()

    def on_report(event: Any) -> tuple[int, None]:
        reports.put((int(event.request.EventTypeID), event.event_information))
        return 0x0000, None

    ae = AE(ae_title="COMMITTER")
    ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
    port = free_port()
    server = ae.start_server((LOCALHOST, port), block=False,
                             evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    try:
        yield port, reports
    finally:
        server.shutdown()


def _ask_commitment(dicom: RunningDicom, refs: list[tuple[str, str]]) -> tuple[str, int]:
    info = Dataset()
    info.TransactionUID = generate_uid()
    items = []
    for sop_class, sop_uid in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_uid
        items.append(item)
    info.ReferencedSOPSequence = DicomSequence(items)
    ae = AE(ae_title="COMMITTER")
    ae.add_requested_context(StorageCommitmentPushModel)
    assoc = ae.associate(LOCALHOST, dicom.port, ae_title=dicom.ae_title)
    assert assoc.is_established
    try:
        status, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel,
                                        COMMITMENT_INSTANCE)
    finally:
        assoc.release()
    assert status is not None and "Status" in status
    return str(info.TransactionUID), int(status.Status)


def _refs(sequence: Any) -> dict[str, int | None]:
    return {str(item.ReferencedSOPInstanceUID): item.get("FailureReason")
            for item in sequence or []}


def test_storage_commitment(dicom: RunningDicom, report_listener: Any, tmp_path: Path) -> None:
    port, reports = report_listener
    register(dicom, "COMMITTER", port, "store")
    good, tampered, wrong_class = make_instance(), make_instance(seed=1), make_instance(seed=2)
    for ds in (good, tampered, wrong_class):
        dicom.archive.store_file(write(ds, tmp_path))
    blob = blob_path(dicom, tampered.SOPInstanceUID)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    unknown = generate_uid()

    transaction, status = _ask_commitment(dicom, [
        (CT_IMAGE_STORAGE, good.SOPInstanceUID), (CT_IMAGE_STORAGE, unknown),
        (CT_IMAGE_STORAGE, tampered.SOPInstanceUID),
        ("1.2.840.10008.5.1.4.1.1.4", wrong_class.SOPInstanceUID)])
    assert status == 0
    event_type, info = reports.get(timeout=30)
    assert event_type == 2  # some failed
    assert info.TransactionUID == transaction
    assert _refs(info.ReferencedSOPSequence) == {good.SOPInstanceUID: None}
    assert _refs(info.FailedSOPSequence) == {
        unknown: 0x0112, tampered.SOPInstanceUID: 0x0110,
        wrong_class.SOPInstanceUID: 0x0119}


def test_storage_commitment_all_committed(dicom: RunningDicom, report_listener: Any,
                                          tmp_path: Path) -> None:
    port, reports = report_listener
    register(dicom, "COMMITTER", port, "store")
    stored = [make_instance(seed=i) for i in range(2)]
    for ds in stored:
        dicom.archive.store_file(write(ds, tmp_path))
    transaction, status = _ask_commitment(
        dicom, [(CT_IMAGE_STORAGE, ds.SOPInstanceUID) for ds in stored])
    assert status == 0
    event_type, info = reports.get(timeout=30)
    assert event_type == 1
    assert info.TransactionUID == transaction
    assert set(_refs(info.ReferencedSOPSequence)) == {ds.SOPInstanceUID for ds in stored}
    assert "FailedSOPSequence" not in info


# -- TLS -------------------------------------------------------------------------------

@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _make_pki(directory: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def save(stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
             ) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder().subject_name(name("Test CA")).issuer_name(name("Test CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    ca_path, _ = save("ca", ca_cert, ca_key)

    def leaf(common: str, usage: x509.ObjectIdentifier) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(common))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address(LOCALHOST))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return save(common, cert, key)

    server_cert, server_key = leaf("server", ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = leaf("client", ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(ca_path, server_cert, server_key, client_cert, client_key)


@pytest.fixture
def tls_dicom(settings: Settings, tmp_path: Path) -> Iterator[tuple[RunningDicom, Pki]]:
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    pki = _make_pki(pki_dir)
    tls_settings = replace(settings, dicom_tls_port=free_port(),
                           tls_certificate=str(pki.server_cert),
                           tls_private_key=str(pki.server_key),
                           tls_ca_certificates=str(pki.ca),
                           tls_require_client_certificate=True)
    with RunningDicom(tls_settings) as running:
        yield running, pki


def _client_context(pki: Pki, *, with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    if with_cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def _tls_associate(dicom: RunningDicom, context: ssl.SSLContext, *contexts: str) -> Any:
    ae = AE(ae_title="TLSCLIENT")
    ae.acse_timeout = 10
    ae.network_timeout = 10
    for uid in contexts:
        ae.add_requested_context(uid)
    return ae.associate(LOCALHOST, dicom.settings.dicom_tls_port, ae_title=dicom.ae_title,
                        tls_args=(context, "localhost"))


def test_tls_echo_and_store_with_client_certificate(tls_dicom: Any, tmp_path: Path) -> None:
    dicom, pki = tls_dicom
    ds = make_instance()
    path = write(ds, tmp_path)
    assoc = _tls_associate(dicom, _client_context(pki), Verification, CTImageStorage)
    assert assoc.is_established
    try:
        assert int(assoc.send_c_echo().Status) == 0
        assert int(assoc.send_c_store(path).Status) == 0
    finally:
        assoc.release()
    assert dataset_sha(stored_bytes(dicom, ds.SOPInstanceUID)) == dataset_sha(path.read_bytes())


def test_tls_without_client_certificate_is_refused(tls_dicom: Any, tmp_path: Path) -> None:
    dicom, pki = tls_dicom
    assoc = _tls_associate(dicom, _client_context(pki, with_cert=False), Verification,
                           CTImageStorage)
    try:
        assert not assoc.is_established
    finally:
        if assoc.is_established:
            assoc.release()
    assert instance_count(dicom) == 0


def test_tls_client_certificate_from_another_ca_is_refused(tls_dicom: Any,
                                                           tmp_path: Path) -> None:
    dicom, pki = tls_dicom
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = _make_pki(other_dir)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(str(other.client_cert), str(other.client_key))
    assoc = _tls_associate(dicom, context, Verification)
    assert not assoc.is_established


def test_plain_client_on_tls_port_is_refused(tls_dicom: Any) -> None:
    dicom, _ = tls_dicom
    ae = AE(ae_title="PLAIN")
    ae.acse_timeout = 5
    ae.network_timeout = 5
    ae.add_requested_context(Verification)
    assoc = ae.associate(LOCALHOST, dicom.settings.dicom_tls_port, ae_title=dicom.ae_title)
    assert not assoc.is_established


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_client_is_refused(tls_dicom: Any) -> None:
    dicom, pki = tls_dicom
    context = _client_context(pki)
    try:
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as exc:
        pytest.skip(f"this OpenSSL cannot even offer TLS 1.1: {exc}")
    assoc = _tls_associate(dicom, context, Verification)
    assert not assoc.is_established
    # the same client at TLS 1.2 gets in: the refusal was about the protocol version
    assoc = _tls_associate(dicom, _client_context(pki), Verification)
    assert assoc.is_established
    assoc.release()


def test_dcmtk_echoscu_over_tls(tls_dicom: Any) -> None:
    dicom, pki = tls_dicom
    result = dcmtk("echoscu", "-v", "+tls", str(pki.client_key), str(pki.client_cert),
                   "+cf", str(pki.ca), "-aec", dicom.ae_title, LOCALHOST,
                   str(dicom.settings.dicom_tls_port))
    assert result.returncode == 0, result.stderr
    assert "Received Echo Response (Success)" in result.stderr
