"""No plaintext patient name or ID in any stored blob after ingesting the demo data.

The scan looks for every patient's name in the encodings DICOM writes it in (PS3.5 §6.2:
``^``-separated components, each component alone, the name with spaces; UTF-8 for
``ISO_IR 192`` and Latin-1 for ``ISO_IR 100``) and for the patient IDs, in every file under
the installation directory except the SQL index itself (which holds them in plaintext by
design: use database or volume encryption for it). The same scan with ``encrypt_at_rest``
off must find them, so the test proves it can fail.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vesalius.cli.importer import import_paths
from vesalius.cli.main import load_demo
from vesalius.config import Settings
from vesalius.demo.common import DEFAULT_PATIENT, DemoPatient
from vesalius.demo.synthetic import write_demo
from vesalius.node import build_node

ACCENTED = DemoPatient(patient_name="MÜLLER^JOSÉ^^DR", patient_id="VES-SCAN-4711",
                       issuer="VESALIUS-SCAN", birth_date="19610203", sex="M")
SQL_INDEX_PREFIX = "index.sqlite3"


def _needles(patient: DemoPatient) -> set[bytes]:
    name = patient.patient_name
    texts = {name, name.replace("^", " ").strip(), *(c for c in name.split("^") if len(c) > 3)}
    found = {patient.patient_id.encode("ascii")}
    for text in texts:
        for encoding in ("utf-8", "latin-1"):
            found.add(text.encode(encoding))
    return found


def _scan(data_dir: Path, needles: set[bytes]) -> dict[str, set[bytes]]:
    """Which needles occur in which file (relative path), SQL index files excluded."""
    hits: dict[str, set[bytes]] = {}
    for path in data_dir.rglob("*"):
        if not path.is_file() or path.name.startswith(SQL_INDEX_PREFIX):
            continue
        content = path.read_bytes()
        seen = {needle for needle in needles if needle in content}
        if seen:
            hits[str(path.relative_to(data_dir))] = seen
    return hits


def _ingest(settings: Settings, tmp_path: Path) -> Settings:
    node = build_node(settings)
    load_demo(node, settings.demo_ct_slices)
    extra = write_demo(tmp_path / "accented", ct_slices=2, patient=ACCENTED)
    summary = import_paths(node.archive, extra, progress=False)
    assert summary.counts["rejected"] == 0
    assert node.archive.reader.counts()["instances"] >= 2 * settings.demo_ct_slices + 2
    return node.settings


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plaintext"])
def test_demo_blobs_hold_no_plaintext_patient_data(settings: Settings, tmp_path: Path,
                                                   encrypted: bool) -> None:
    settings = _ingest(replace(settings, demo_ct_slices=3, encrypt_at_rest=encrypted),
                       tmp_path)
    needles = _needles(DEFAULT_PATIENT) | _needles(ACCENTED)
    blobs = [p for p in settings.blob_dir.rglob("*") if p.is_file()]
    assert len(blobs) >= 2 * 3 + 2 + 2
    hits = _scan(settings.data_dir, needles)
    if encrypted:
        assert hits == {}
        return
    # The control: the very same scan sees the data when it is stored in plaintext.
    in_blobs = set().union(*(seen for path, seen in hits.items()
                             if path.startswith(settings.blob_dir.name)))
    assert {DEFAULT_PATIENT.patient_id.encode(), DEFAULT_PATIENT.patient_name.encode(),
            ACCENTED.patient_id.encode(), ACCENTED.patient_name.encode("utf-8")} <= in_blobs
