"""The keyed hash chain over audit records.

Entry ``n`` carries ``mac_n = HMAC-SHA256(key, canonical(n, mac_{n-1}, columns_n))`` with
``mac_0`` = 64 zeros. The canonical encoding is JSON with sorted keys and no whitespace
(UTF-8) of the record's stored columns plus ``sequence`` and ``previous``, so the MAC binds a
record to its place in the log and to everything before it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from vesalius.security.audit.keys import AuditKey

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainedRecord:
    """One stored row: its place in the chain and its columns exactly as stored."""

    sequence: int
    previous: str
    mac: str
    columns: Mapping[str, object]


def canonical(sequence: int, previous: str, columns: Mapping[str, object]) -> bytes:
    """The bytes the MAC is computed over. Stored values are encoded as they are (a column
    whose type was changed behind our back encodes differently and fails the MAC)."""
    body = {**columns, "sequence": sequence, "previous": previous}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=repr).encode("utf-8")


def compute_mac(key: AuditKey, sequence: int, previous: str,
                columns: Mapping[str, object]) -> str:
    return key.mac(canonical(sequence, previous, columns))


def chain(key: AuditKey, sequence: int, previous: str,
          columns: Mapping[str, object]) -> ChainedRecord:
    """The entry ``columns`` becomes at ``sequence`` after an entry whose MAC is ``previous``."""
    return ChainedRecord(sequence, previous, compute_mac(key, sequence, previous, columns),
                         dict(columns))


def authentic(key: AuditKey, entry: ChainedRecord) -> bool:
    """Whether ``entry`` is exactly what the key holder wrote (content, place and link)."""
    expected = compute_mac(key, entry.sequence, entry.previous, entry.columns)
    return (isinstance(entry.mac, str) and entry.mac.isascii()
            and hmac.compare_digest(expected, entry.mac))
