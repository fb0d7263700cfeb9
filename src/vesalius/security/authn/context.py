"""What every part of the identity core shares: the database, settings, clock and auditor."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from vesalius.config import Settings
from vesalius.security.audit.auditor import Auditor
from vesalius.security.principal import Principal

#: Bytes of randomness in every opaque token we hand out (codes, refresh tokens, sessions).
TOKEN_BYTES = 32


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """SHA-256 of a random token, as stored (hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def b64url_sha256(text: str) -> str:
    """``BASE64URL(SHA256(ASCII(text)))`` without padding (RFC 7636 §4.2, S256)."""
    raw = hashlib.sha256(text.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class Context:
    engine: Engine
    settings: Settings
    auditor: Auditor | None
    clock: Callable[[], datetime]

    def now(self) -> int:
        return int(self.clock().timestamp())

    def audit(self, principal: Principal, *, type: str, action: str, outcome: int, how: str,
              subtype: str = "", what: str = "", outcome_desc: str = "",
              durable: bool = False) -> None:
        """Record an audit event when an auditor is configured (tests and the demo may run
        without one)."""
        if self.auditor is not None:
            self.auditor.record(principal, type=type, action=action, outcome=outcome, how=how,
                                subtype=subtype, what=what, outcome_desc=outcome_desc,
                                durable=durable)
