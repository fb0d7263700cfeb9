"""Choosing what bytes go over an association: as stored, or transcoded as a fallback."""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom.presentation import build_context

from vesalius.archive.index.records import StoredInstance
from vesalius.archive.service import ArchiveService
from vesalius.core.errors import NotAcceptable
from vesalius.dicom.transcode import to_explicit_vr_little_endian

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"


def accepted_syntaxes(assoc: Any, sop_class: str) -> set[str]:
    """Transfer syntaxes the peer accepted for ``sop_class`` (as SCP of storage)."""
    if assoc is None:
        return set()
    return {str(cx.transfer_syntax[0]) for cx in assoc.accepted_contexts
            if str(cx.abstract_syntax) == sop_class}


def dataset_for_context(archive: ArchiveService, instance: StoredInstance,
                        assoc: Any) -> Dataset:
    """The instance as a Dataset the association can carry.

    Stored transfer syntax when the peer accepted it; otherwise decompressed to
    Explicit (or Implicit) VR Little Endian. Raises NotAcceptable when neither works.
    """
    data = archive.read_bytes(instance)
    ds = pydicom.dcmread(io.BytesIO(data))
    accepted = accepted_syntaxes(assoc, instance.sop_class_uid)
    if assoc is None or instance.transfer_syntax_uid in accepted:
        return ds
    if EXPLICIT_LE in accepted or IMPLICIT_LE in accepted:
        converted = to_explicit_vr_little_endian(ds)
        implicit = EXPLICIT_LE not in accepted
        if implicit:
            converted.file_meta.TransferSyntaxUID = pydicom.uid.UID(IMPLICIT_LE)
        # pynetdicom refuses a data set whose encoding as read disagrees with its
        # file meta transfer syntax, so the copy must claim the encoding it will get.
        converted.set_original_encoding(implicit, True, ds.original_character_set)
        return converted
    raise NotAcceptable("the peer accepted no transfer syntax we can produce for this instance")


def storage_contexts(found: list[StoredInstance]) -> list[Any]:
    """Requested contexts for sending ``found``: stored syntaxes, plus an uncompressed fallback."""
    by_class: dict[str, set[str]] = {}
    for instance in found:
        by_class.setdefault(instance.sop_class_uid, set()).add(instance.transfer_syntax_uid)
    contexts = []
    for sop_class, syntaxes in sorted(by_class.items())[:64]:
        stored = sorted(syntaxes)
        contexts.append(build_context(sop_class, stored))
        fallback = [ts for ts in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2") if ts not in stored]
        if fallback:
            contexts.append(build_context(sop_class, fallback))
    return contexts
