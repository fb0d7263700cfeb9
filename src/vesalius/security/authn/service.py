"""``AuthService``: the one object the edges (``web.auth``, the CLI, the demo) talk to.

It owns the tables and the signing key and delegates to one module per noun: ``accounts``
(local users, sign-in, TOTP), ``clients`` (registration and client authentication),
``grants`` (codes, tokens, refresh, revocation, verification) and ``sessions``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from vesalius.config import Settings
from vesalius.security.audit.auditor import Auditor
from vesalius.security.authn import discovery
from vesalius.security.authn.accounts import Accounts
from vesalius.security.authn.clients import Clients
from vesalius.security.authn.context import Context, utcnow
from vesalius.security.authn.grants import Grants
from vesalius.security.authn.keys import load_signing_key
from vesalius.security.authn.model import Client, SignInResult, TokenResponse
from vesalius.security.authn.sessions import Sessions
from vesalius.security.authn.tables import metadata
from vesalius.security.principal import Principal


class AuthService:
    """Accounts, clients, tokens and sessions of the built-in OpenID Connect provider.

    Administrative methods take an optional ``by``: the principal acting (the CLI passes
    one), whose change is then audited as a DICOM Security Alert (110113) with subtype
    "Use of Restricted Function" (110132), durably.
    """

    def __init__(self, engine: Engine, settings: Settings, auditor: Auditor | None, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._ctx = Context(engine, settings, auditor, clock)
        self._accounts = Accounts(self._ctx)
        self._clients = Clients(self._ctx)
        self._sessions = Sessions(self._ctx, self._accounts)
        self._grants: Grants | None = None

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    def create(self) -> None:
        """Create the tables and the signing key when missing (idempotent, safe to race)."""
        for attempt in range(3):
            try:
                metadata.create_all(self._ctx.engine)
                break
            except (IntegrityError, ProgrammingError, OperationalError):
                # Another process created a table between our check and our CREATE
                # (PostgreSQL reports it as a duplicate type); the next pass sees it.
                if attempt == 2:
                    raise
        load_signing_key(self._ctx.settings.keys_dir, create=True)

    @property
    def _g(self) -> Grants:
        """Grants need the signing key, read on first use (so building the service does no
        I/O and a missing key is reported where it matters)."""
        if self._grants is None:
            key = load_signing_key(self._ctx.settings.keys_dir, create=False)
            self._grants = Grants(self._ctx, self._accounts, self._clients, key)
        return self._grants

    def audit_restricted(self, by: Principal, action: str, description: str) -> None:
        """Audit an administrative act done outside this service (e.g. a token issued by
        hand): 110113 Security Alert / 110132 Use of Restricted Function, how ``cli``."""
        self._ctx.audit(by, type="110113", subtype="110132", action=action, outcome=0,
                        how="cli", outcome_desc=description, durable=True)

    # --- local accounts ---------------------------------------------------------------------

    def add_user(self, username: str, roles: Iterable[str], *, password: str | None = None,
                 practitioner: str | None = None, patient: str | None = None,
                 organization: str | None = None, name: str = "",
                 by: Principal | None = None) -> str:
        """Create an account; returns its password (generated when none is given)."""
        return self._accounts.add_user(username, roles, password=password,
                                       practitioner=practitioner, patient=patient,
                                       organization=organization, name=name, by=by)

    def set_password(self, username: str, password: str, *, by: Principal | None = None) -> None:
        self._accounts.set_password(username, password, by=by)

    def disable_user(self, username: str, *, by: Principal | None = None) -> None:
        self._accounts.disable_user(username, by=by)

    def enable_user(self, username: str, *, by: Principal | None = None) -> None:
        self._accounts.enable_user(username, by=by)

    def reset_mfa(self, username: str, *, by: Principal | None = None) -> None:
        self._accounts.reset_mfa(username, by=by)

    def users(self) -> list[dict[str, object]]:
        return self._accounts.users()

    def sign_in(self, username: str, password: str, totp: str | None,
                address: str) -> SignInResult:
        return self._accounts.sign_in(username, password, totp, address)

    def confirm_totp(self, username: str, password: str, code: str,
                     address: str) -> SignInResult:
        return self._accounts.confirm_totp(username, password, code, address)

    def set_totp_secret(self, username: str, secret: str) -> None:
        self._accounts.set_totp_secret(username, secret)

    def totp_secret_for_demo(self, username: str) -> str:
        return self._accounts.totp_secret(username)

    def user_principal(self, username: str, *, scopes: Iterable[str] = frozenset(),
                       patient: str | None = None, session: str | None = None,
                       address: str = "") -> Principal:
        return self._accounts.principal(username, scopes=frozenset(scopes), patient=patient,
                                        session=session, address=address)

    # --- clients ----------------------------------------------------------------------------

    def add_client(self, client_id: str, *, name: str = "", public: bool = False,
                   redirect_uris: Iterable[str] = (), scopes: Iterable[str] = (),
                   roles: Iterable[str] = (), jwks: dict[str, Any] | None = None,
                   grant_types: Iterable[str] | None = None,
                   by: Principal | None = None) -> str | None:
        """Register a client; returns its secret (None for public and key-based clients)."""
        return self._clients.add_client(client_id, name=name, public=public,
                                        redirect_uris=redirect_uris, scopes=scopes, roles=roles,
                                        jwks=jwks, grant_types=grant_types, by=by)

    def add_redirect_uris(self, client_id: str, uris: Iterable[str]) -> None:
        self._clients.add_redirect_uris(client_id, uris)

    def client(self, client_id: str) -> Client:
        return self._clients.client(client_id)

    def clients(self) -> list[Client]:
        return self._clients.clients()

    def authenticate_client(self, client_id: str | None, *, secret: str | None = None,
                            assertion: str | None = None, assertion_type: str | None = None,
                            token_endpoint: str) -> Client:
        return self._clients.authenticate(client_id, secret=secret, assertion=assertion,
                                          assertion_type=assertion_type,
                                          token_endpoint=token_endpoint)

    # --- grants and tokens ------------------------------------------------------------------

    def issue_code(self, principal: Principal, client: Client, *, redirect_uri: str,
                   scopes: Iterable[str] | str, code_challenge: str, code_challenge_method: str,
                   nonce: str | None = None, launch_patient: str | None = None) -> str:
        return self._g.issue_code(principal, client, redirect_uri=redirect_uri, scopes=scopes,
                                  code_challenge=code_challenge,
                                  code_challenge_method=code_challenge_method, nonce=nonce,
                                  launch_patient=launch_patient)

    def redeem_code(self, code: str, client: Client, *, redirect_uri: str,
                    code_verifier: str) -> TokenResponse:
        return self._g.redeem_code(code, client, redirect_uri=redirect_uri,
                                   code_verifier=code_verifier)

    def client_credentials(self, client: Client, scopes: Iterable[str] | str,
                           ttl: int | None = None) -> TokenResponse:
        return self._g.client_credentials(client, scopes, ttl)

    def refresh(self, refresh_token: str, client: Client,
                scopes: Iterable[str] | str | None = None) -> TokenResponse:
        return self._g.refresh(refresh_token, client, scopes)

    def revoke(self, token: str, client: Client | None = None) -> None:
        self._g.revoke(token, client)

    def issue_token(self, username: str, ttl: int, scopes: Iterable[str] = ()) -> str:
        return self._g.issue_token(username, ttl, scopes)

    def verify_access_token(self, token: str, *, address: str = "") -> Principal:
        return self._g.verify_access_token(token, address=address)

    def jwks(self) -> dict[str, object]:
        """Our public signing key(s) as a JWKS (RFC 7517 §5)."""
        key = load_signing_key(self._ctx.settings.keys_dir, create=False)
        public: dict[str, object] = dict(key.as_dict(private=False))
        public.update({"use": "sig", "alg": "ES256", "kid": key.kid})
        return {"keys": [public]}

    def discovery(self) -> dict[str, object]:
        return discovery.openid_configuration(self._ctx.settings)

    def smart_configuration(self) -> dict[str, object]:
        return discovery.smart_configuration(self._ctx.settings)

    def userinfo(self, principal: Principal) -> dict[str, object]:
        """OpenID Connect Core §5.3 UserInfo for a token's principal."""
        out: dict[str, object] = {"sub": principal.id}
        if principal.issuer == "local":
            out["preferred_username"] = principal.id
        if principal.name:
            out["name"] = principal.name
        fhir_user = self._g.fhir_user(principal)
        if fhir_user:
            out["fhirUser"] = fhir_user
        return out

    # --- web sessions -----------------------------------------------------------------------

    def open_session(self, username: str, address: str) -> tuple[str, str]:
        """A new session for a signed-in user: (session id for the cookie, CSRF token)."""
        return self._sessions.open(username, address)

    def session(self, session_id: str) -> tuple[Principal, str] | None:
        return self._sessions.get(session_id)

    def close_session(self, session_id: str) -> None:
        self._sessions.close(session_id)
