"""What every endpoint of the provider shares: the identity service, the page secrets, the
per-address limits, and the audit door for what the identity service does not see itself
(rate-limit refusals).

Calls into the identity service touch the database, so handlers make them through
:meth:`Provider.call`, off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from vesalius.config import Settings
from vesalius.security.audit.auditor import Auditor
from vesalius.security.authn import AuthService
from vesalius.security.principal import USER, Principal
from vesalius.web.auth.ratelimit import Refusal, SlidingWindow
from vesalius.web.auth.tickets import PageSecrets, load_key

T = TypeVar("T")

#: Who an unauthenticated caller is in the audit trail (the address says where from).
ANONYMOUS = "anonymous"


def client_address(connection: HTTPConnection) -> str:
    """The peer address of the connection. Forwarded headers are not trusted: a deployment
    behind a proxy runs uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips``, which
    rewrites the peer address before we see it."""
    return connection.client.host if connection.client else ""


def anonymous(address: str) -> Principal:
    return Principal(kind=USER, id=ANONYMOUS, address=address)


class Provider:
    def __init__(self, auth: AuthService, settings: Settings, auditor: Auditor | None) -> None:
        self.auth = auth
        self.settings = settings
        self.auditor = auditor
        self.secrets = PageSecrets(load_key(settings.keys_dir))
        self.login_limit = SlidingWindow(settings.auth_rate_limit_per_minute)
        self.token_limit = SlidingWindow(settings.auth_rate_limit_per_minute)

    def __repr__(self) -> str:
        return f"Provider(issuer={self.settings.issuer!r})"

    @property
    def token_endpoint(self) -> str:
        """The ``aud`` a private_key_jwt client assertion names (RFC 7523 §3)."""
        return f"{self.settings.issuer}/token"

    @property
    def fhir_base(self) -> str:
        """The SMART ``aud`` an app must name at /authorize: the FHIR base URL."""
        return f"{self.settings.base_url}/fhir"

    async def call(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        return await run_in_threadpool(function, *args, **kwargs)

    def limited(self, window: SlidingWindow, address: str, endpoint: str) -> Refusal | None:
        """Count a request to ``endpoint``; audit the first refusal of a burst as a Security
        Alert (DCM 110113)."""
        refusal = window.hit(address)
        if refusal is not None and refusal.first and self.auditor is not None:
            self.auditor.record(anonymous(address), type="110113", action="E", outcome=4,
                                how="web", what=endpoint,
                                outcome_desc="too many requests from this address")
        return refusal
