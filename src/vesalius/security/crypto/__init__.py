"""Encryption at rest: envelope-encrypted blobs under rotatable key-encryption keys.

- ``keys``: the KMS-style :class:`KeyProvider` port and the key-file provider (current KEK
  plus retired ones), AES Key Wrap (RFC 3394) of per-object data keys.
- ``envelope``: the chunked AES-256-GCM object format, built for cheap byte-range reads.
- ``errors``: :class:`TamperedData`, :class:`KeyUnavailable`.

What this protects: blob files copied off the disk or out of a backup without the KEK.
What it does not: the SQL index (patient names and IDs are indexed in plaintext; use the
database's or the volume's own encryption), a process that holds the KEK, and short-lived
upload spool files (deleted as soon as the object is stored).
"""

from __future__ import annotations

from vesalius.security.crypto.envelope import Envelope, Header, looks_like_envelope, seal
from vesalius.security.crypto.errors import KeyUnavailable, TamperedData
from vesalius.security.crypto.keys import FileKeyProvider, KeyProvider, kek_path

__all__ = ["Envelope", "FileKeyProvider", "Header", "KeyProvider", "KeyUnavailable",
           "TamperedData", "kek_path", "looks_like_envelope", "seal"]
