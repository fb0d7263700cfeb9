"""The tamper-evident audit trail.

What is chained: every audit record (who, what, when, from where, how, outcome — see
``model``) is stored as a row of ``audit_log`` with a gapless ``sequence`` and
``mac = HMAC-SHA256(key, canonical(sequence, previous MAC, columns))`` (``chain``), so any
edited, deleted or inserted row breaks the chain at a nameable place (``verify``).

Where the keys live (``keys``): the HMAC key in a file (``audit_key_file``, default
``<data_dir>/keys/audit.key``, mode 0600), never in the database; the Ed25519 checkpoint
signing key in ``<data_dir>/keys``.

Where the checkpoints live (``checkpoints``): signed JSON files under
``<data_dir>/audit-checkpoints/``, every ``audit_checkpoint_every`` records and on demand
(``vesalius audit checkpoint``), outside the database, so a truncated tail is detected.

What verification cannot detect: someone holding both the database and the HMAC key can
rewrite history after the last checkpoint; someone who also holds the signing key (and the
public key the verifier trusts) can rewrite everything. Keep the HMAC key off the database
host, ship checkpoints and the public key elsewhere, and the damage is bounded.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from vesalius.security.audit.chain import ChainedRecord
from vesalius.security.audit.checkpoints import DIRECTORY_NAME, Checkpoints
from vesalius.security.audit.fhir import audit_event
from vesalius.security.audit.keys import (
    PUBLIC_KEY_NAME,
    SIGNING_KEY_NAME,
    AuditKey,
    audit_key_path,
    keys_dir,
    load_audit_key,
    load_public_key,
    load_signing_key,
)
from vesalius.security.audit.model import AuditRecord
from vesalius.security.audit.store import AuditStore, LockFactory
from vesalius.security.audit.verify import Problem

__all__ = ["AuditKey", "AuditRecord", "AuditStore", "ChainedRecord", "Problem", "audit_event",
           "open_audit_store"]


def open_audit_store(engine: Engine, data_dir: Path, *, audit_key_file: str = "",
                     checkpoint_every: int = 1000, lock: LockFactory | None = None,
                     reader: Engine | None = None, create: bool = True) -> AuditStore:
    """The audit store of one installation.

    ``create``: generate missing keys and tables (a writer); without it (a verifier) missing
    keys are an error and the checkpoint signature is checked against the public key file.
    """
    key = load_audit_key(audit_key_path(data_dir, audit_key_file), create=create)
    if create:
        load_signing_key(data_dir, create=True)
    # The signing key may live elsewhere (a verifier needs only the public half).
    signing = (load_signing_key(data_dir, create=False)
               if (keys_dir(data_dir) / SIGNING_KEY_NAME).exists() else None)
    checkpoints = Checkpoints(data_dir / DIRECTORY_NAME,
                              load_public_key(keys_dir(data_dir) / PUBLIC_KEY_NAME), signing)
    store = AuditStore(engine, key, checkpoints, checkpoint_every=checkpoint_every, lock=lock,
                       reader=reader)
    if create:
        store.create()
    return store
