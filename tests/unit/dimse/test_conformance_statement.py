"""docs/conformance/dicom.md lists exactly the SOP classes and transfer syntaxes accepted."""

from __future__ import annotations

import re
from pathlib import Path

from vesalius.config import Settings
from vesalius.dimse import uids
from vesalius.dimse.server import build_ae, storage_sop_classes

DOC = Path(__file__).resolve().parents[3] / "docs" / "conformance" / "dicom.md"


def _section(title: str) -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.index("\n## ", start) if "\n## " in text[start:] else len(text)
    nxt = text.find("\n### ", start + len(title))
    if 0 < nxt < end:
        end = nxt
    return set(re.findall(r"`([0-9.]+)`", text[start:end]))


def test_storage_sop_classes_match_the_server() -> None:
    ae = build_ae(Settings())
    accepted = {str(cx.abstract_syntax) for cx in ae.supported_contexts}
    documented = _section("### Storage SOP classes accepted")
    assert documented == set(storage_sop_classes())
    assert documented <= accepted


def test_transfer_syntaxes_match_the_server() -> None:
    ae = build_ae(Settings())
    storage = set(storage_sop_classes())
    syntaxes = {str(ts) for cx in ae.supported_contexts if str(cx.abstract_syntax) in storage
                for ts in cx.transfer_syntax}
    assert _section("### Transfer syntaxes accepted for storage") == syntaxes


def test_network_services_match_the_server() -> None:
    ae = build_ae(Settings())
    accepted = {str(cx.abstract_syntax) for cx in ae.supported_contexts}
    documented = _section("## 1. Network services")
    expected = set(uids.QUERY_RETRIEVE) | set(uids.NORMALIZED_AND_VERIFICATION)
    assert documented == expected
    assert expected <= accepted
    non_storage = accepted - set(storage_sop_classes())
    assert non_storage == expected
