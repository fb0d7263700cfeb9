"""Bearer tokens on requests (RFC 6750, https://www.rfc-editor.org/rfc/rfc6750).

Only the ``Authorization`` header is read (§2.1). Tokens in query strings (§2.3) end up in
access logs, browser history and Referer headers, so they are not accepted at all; form-body
tokens (§2.2) are not needed by any client we serve.
"""

from __future__ import annotations

import re

from vesalius.security.audit.auditor import Auditor
from vesalius.web.auth.provider import anonymous

REALM = "vesalius"
#: ``b64token`` of RFC 6750 §2.1; anything else in the header is not a token we issued.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: Longer than any token we or a sane external provider issue.
MAX_TOKEN = 16 * 1024


class BadCredentials(Exception):
    """An ``Authorization`` header that holds no usable bearer token."""


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; ``None`` without the header;
    :class:`BadCredentials` for any other scheme or a malformed token."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise BadCredentials("the Authorization header does not hold a bearer token")
    if not token or len(token) > MAX_TOKEN or not _B64TOKEN.fullmatch(token):
        raise BadCredentials("the bearer token is malformed")
    return token


def challenge(error: str | None = None, description: str | None = None) -> str:
    """A ``WWW-Authenticate`` value (§3): no error code when no credentials were sent."""
    parts = [f'Bearer realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        safe = description.replace("\\", "").replace('"', "'")
        parts.append(f'error_description="{safe}"')
    return ", ".join(parts)


def audit_refused_token(auditor: Auditor | None, address: str, how: str, reason: str) -> None:
    """Record a refused credential as a failed User Authentication (DCM 110114). The token
    itself is never recorded: a stolen-but-expired token may still be someone's secret."""
    if auditor is None:
        return
    auditor.record(anonymous(address), type="110114", action="E", outcome=4, how=how,
                   outcome_desc=reason[:200])
