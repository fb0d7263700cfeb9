"""Signed checkpoints of the audit chain, written outside the database.

A checkpoint says "the log had reached ``sequence`` and its MAC there was ``mac``" at
``time``, signed with Ed25519 (RFC 8032) over the canonical JSON of those three fields. One
JSON file per checkpoint under ``<data_dir>/audit-checkpoints/`` (name: the zero-padded
sequence), written atomically. Checkpoints catch what the chain alone cannot: a truncated
tail, and history rewritten by someone holding the chain key but not the signing key.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vesalius.core.errors import NotFound

DIRECTORY_NAME = "audit-checkpoints"
_NAME = re.compile(r"(\d+)\.json")


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    mac: str
    time: str


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint file as read back: ``checkpoint`` is None when it is not authentic."""

    path: Path
    #: The sequence the file claims (its content, else its name).
    sequence: int
    checkpoint: Checkpoint | None
    problem: str = ""


def _signed_bytes(checkpoint: Checkpoint) -> bytes:
    body = {"sequence": checkpoint.sequence, "mac": checkpoint.mac, "time": checkpoint.time}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


class Checkpoints:
    """The checkpoint folder: ``write`` needs the signing key, ``read`` the public key."""

    def __init__(self, directory: Path, public_key: Ed25519PublicKey,
                 signing_key: Ed25519PrivateKey | None = None) -> None:
        self.directory = directory
        self._public_key = public_key
        self._signing_key = signing_key

    def write(self, sequence: int, mac: str) -> Path:
        if self._signing_key is None:
            raise NotFound("the audit checkpoint signing key is not on this host")
        checkpoint = Checkpoint(sequence, mac,
                                datetime.now(UTC).isoformat(timespec="microseconds"))
        signature = self._signing_key.sign(_signed_bytes(checkpoint))
        document = {"sequence": sequence, "mac": mac, "time": checkpoint.time,
                    "signature": base64.b64encode(signature).decode("ascii")}
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{sequence:020d}.json"
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return path

    def read(self) -> list[CheckpointFile]:
        """Every checkpoint file, oldest sequence first, each checked against its signature."""
        if not self.directory.is_dir():
            return []
        found = [self._read(path) for path in self.directory.iterdir()
                 if _NAME.fullmatch(path.name)]
        return sorted(found, key=lambda f: (f.sequence, f.path.name))

    def _read(self, path: Path) -> CheckpointFile:
        named = int(_NAME.fullmatch(path.name).group(1))  # type: ignore[union-attr]
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            checkpoint = Checkpoint(int(document["sequence"]), str(document["mac"]),
                                    str(document["time"]))
            signature = base64.b64decode(document["signature"], validate=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return CheckpointFile(path, named, None, f"unreadable ({exc.__class__.__name__})")
        try:
            self._public_key.verify(signature, _signed_bytes(checkpoint))
        except InvalidSignature:
            return CheckpointFile(path, checkpoint.sequence, None, "signature does not verify")
        if checkpoint.sequence != named:
            return CheckpointFile(path, checkpoint.sequence, None,
                                  f"signed for sequence {checkpoint.sequence}, named {named}")
        return CheckpointFile(path, checkpoint.sequence, checkpoint)
