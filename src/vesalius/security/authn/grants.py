"""OAuth 2.0 grants and the access tokens they produce.

- Authorization code with PKCE (RFC 6749 §4.1, RFC 7636; S256 only, as SMART App Launch v2
  requires): a code lives 60 s and is redeemed once. A second redemption means the code
  leaked, so every token issued from it is revoked (RFC 6749 §4.1.2).
- Refresh tokens (RFC 6749 §6) rotate on every use; presenting a rotated token again means
  one copy was stolen, so the whole family descended from the original grant is revoked
  (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).
- Client credentials (RFC 6749 §4.4, SMART Backend Services) for confidential clients.
- Revocation (RFC 7009): access tokens by ``jti`` until they expire; refresh tokens with
  their family. Unknown or foreign tokens are ignored, as §2.2 asks.

Access tokens are ES256 JWTs (see ``tokens``) so the FHIR and DICOMweb edges verify them
without a database round trip, except for the revocation list and the account check.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from vesalius.core.errors import InvalidInput
from vesalius.security.authn import scopes as scope_rules
from vesalius.security.authn.accounts import FHIR_ID, SECURITY_ALERT, Accounts
from vesalius.security.authn.clients import Clients
from vesalius.security.authn.context import Context, b64url_sha256, digest, new_token
from vesalius.security.authn.keys import ExternalKeys
from vesalius.security.authn.model import Client, TokenResponse, Unauthenticated
from vesalius.security.authn.tables import (
    auth_codes,
    auth_refresh_tokens,
    auth_revoked,
)
from vesalius.security.authn.tokens import (
    ASYMMETRIC_ALGORITHMS,
    LOCAL_ALGORITHMS,
    MAX_TOKEN_LENGTH,
    audience_matches,
    check_times,
    peek,
    sign,
    verify,
)
from vesalius.security.principal import CLIENT, ROLES, USER, Principal

CODE_SECONDS = 60
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
MAX_OPAQUE = 256
MAX_ISSUE_TTL = 366 * 24 * 3600
JTI = re.compile(r"[A-Za-z0-9_-]{16,64}")


def parse_role_map(entries: Iterable[str]) -> dict[str, frozenset[str]]:
    """``external_role_map`` entries (``value=role``) as value → our roles."""
    out: dict[str, set[str]] = {}
    for entry in entries:
        value, sep, role = entry.partition("=")
        if not sep or not value.strip() or role.strip() not in ROLES:
            raise InvalidInput(f"external_role_map entry {entry!r} must be 'value=role' with "
                               f"a role among {', '.join(ROLES)}")
        out.setdefault(value.strip(), set()).add(role.strip())
    return {k: frozenset(v) for k, v in out.items()}


def _claim(claims: dict[str, Any], path: str) -> object:
    """A claim by dotted path (``realm_access.roles`` as Keycloak nests it)."""
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class Grants:
    def __init__(self, ctx: Context, accounts: Accounts, clients: Clients, key: ECKey) -> None:
        self._ctx = ctx
        self._accounts = accounts
        self._clients = clients
        self._key = key
        settings = ctx.settings
        self._external = (ExternalKeys(settings.external_jwks)
                          if settings.external_issuer and settings.external_jwks else None)
        self._role_map = parse_role_map(settings.external_role_map)

    # --- issuing ----------------------------------------------------------------------------

    def _scopes(self, requested: Iterable[str] | str, allowed: Iterable[str]) -> frozenset[str]:
        try:
            return scope_rules.granted(scope_rules.split_scopes(requested), allowed)
        except InvalidInput as exc:
            raise Unauthenticated(exc.message, "invalid_scope") from exc

    def _access_token(self, principal: Principal, client_id: str | None,
                      ttl: int) -> tuple[str, str, int]:
        now = self._ctx.now()
        jti = new_token()[:32]
        claims: dict[str, Any] = {
            "iss": self._ctx.settings.issuer, "sub": principal.id,
            "aud": self._ctx.settings.base_url, "exp": now + ttl, "iat": now, "nbf": now,
            "jti": jti, "scope": " ".join(sorted(principal.scopes)),
            "roles": sorted(principal.roles), "kind": principal.kind}
        if client_id is not None:
            claims["client_id"] = client_id
        for name in ("patient", "practitioner", "organization"):
            value = getattr(principal, name)
            if value is not None:
                claims[name] = value
        return sign(self._key, claims, typ="at+jwt"), jti, now + ttl

    def fhir_user(self, principal: Principal) -> str | None:
        base = f"{self._ctx.settings.base_url}/fhir"
        if "patient" in principal.roles and principal.patient:
            return f"{base}/Patient/{principal.patient}"
        if principal.practitioner:
            return f"{base}/Practitioner/{principal.practitioner}"
        return None

    def _id_token(self, principal: Principal, client: Client, nonce: str | None,
                  auth_time: int) -> str:
        """OpenID Connect Core §2 ID token; ``fhirUser`` per SMART App Launch §2.0.9."""
        now = self._ctx.now()
        claims: dict[str, Any] = {"iss": self._ctx.settings.issuer, "sub": principal.id,
                                  "aud": client.client_id, "exp": now + 300, "iat": now,
                                  "auth_time": auth_time, "azp": client.client_id}
        if nonce:
            claims["nonce"] = nonce
        if "fhirUser" in principal.scopes and (fhir_user := self.fhir_user(principal)):
            claims["fhirUser"] = fhir_user
        if "profile" in principal.scopes:
            claims["preferred_username"] = principal.id
            if principal.name:
                claims["name"] = principal.name
        return sign(self._key, claims)

    def _respond(self, principal: Principal, client: Client, *, family: str,
                 nonce: str | None = None, auth_time: int | None = None) -> TokenResponse:
        ttl = self._ctx.settings.access_token_ttl
        access, jti, access_expires = self._access_token(principal, client.client_id, ttl)
        refresh = None
        if ({"offline_access", "online_access"} & principal.scopes
                and "refresh_token" in client.grant_types):
            refresh = new_token()
            with self._ctx.engine.begin() as conn:
                conn.execute(insert(auth_refresh_tokens).values(
                    token_hash=digest(refresh), family=family, client_id=client.client_id,
                    username=principal.id if principal.kind == USER else None,
                    scopes=" ".join(sorted(principal.scopes)), patient=principal.patient,
                    expires=self._ctx.now() + self._ctx.settings.refresh_token_ttl,
                    rotated=False, revoked=False, access_jti=jti,
                    access_expires=access_expires))
        id_token = None
        if "openid" in principal.scopes and principal.kind == USER:
            id_token = self._id_token(principal, client, nonce,
                                      auth_time if auth_time is not None else self._ctx.now())
        patient = (principal.patient if "launch/patient" in principal.scopes
                   or "patient" in principal.roles else None)
        return TokenResponse(access_token=access, expires_in=ttl,
                             scope=" ".join(sorted(principal.scopes)), refresh_token=refresh,
                             id_token=id_token, patient=patient)

    # --- authorization code -----------------------------------------------------------------

    def issue_code(self, principal: Principal, client: Client, *, redirect_uri: str,
                   scopes: Iterable[str] | str, code_challenge: str, code_challenge_method: str,
                   nonce: str | None = None, launch_patient: str | None = None) -> str:
        if principal.kind != USER or principal.issuer != "local":
            raise Unauthenticated("only local users sign in here", "access_denied")
        if "authorization_code" not in client.grant_types:
            raise Unauthenticated("this client may not use the authorization code grant",
                                  "unauthorized_client")
        if redirect_uri not in client.redirect_uris:
            raise Unauthenticated("the redirect URI is not registered for this client",
                                  "invalid_request")
        if code_challenge_method != "S256":
            raise Unauthenticated("PKCE with code_challenge_method S256 is required",
                                  "invalid_request")
        if not isinstance(code_challenge, str) or not CODE_CHALLENGE.fullmatch(code_challenge):
            raise Unauthenticated("the code challenge must be 43 base64url characters",
                                  "invalid_request")
        if nonce is not None and (not isinstance(nonce, str) or len(nonce) > 512):
            raise Unauthenticated("the nonce is too long", "invalid_request")
        if launch_patient is not None and not FHIR_ID.fullmatch(str(launch_patient)):
            raise Unauthenticated("the launch patient is not a FHIR id", "invalid_request")
        granted = self._scopes(scopes, client.scopes)
        code = new_token()
        now = self._ctx.now()
        with self._ctx.engine.begin() as conn:
            conn.execute(insert(auth_codes).values(
                code_hash=digest(code), client_id=client.client_id, username=principal.id,
                redirect_uri=redirect_uri, scopes=" ".join(sorted(granted)),
                code_challenge=code_challenge, nonce=nonce, launch_patient=launch_patient,
                auth_time=now, expires=now + CODE_SECONDS, used=False, replayed=False))
        return code

    def redeem_code(self, code: str, client: Client, *, redirect_uri: str,
                    code_verifier: str) -> TokenResponse:
        invalid = Unauthenticated("the authorization code is invalid, expired or used",
                                  "invalid_grant")
        if not isinstance(code, str) or not code or len(code) > MAX_OPAQUE:
            raise invalid
        code_hash = digest(code)
        with self._ctx.engine.begin() as conn:
            row = conn.execute(select(auth_codes)
                               .where(auth_codes.c.code_hash == code_hash)).first()
            if row is None:
                raise invalid
            # Conditional, so that of two concurrent redemptions exactly one wins.
            won = conn.execute(update(auth_codes).where(
                auth_codes.c.code_hash == code_hash, auth_codes.c.used.is_(False))
                .values(used=True)).rowcount == 1
        if not won:
            with self._ctx.engine.begin() as conn:
                conn.execute(update(auth_codes).where(auth_codes.c.code_hash == code_hash)
                             .values(replayed=True))
            self._revoke_family(code_hash)
            self._alert(client.client_id, "authorization code replayed; its tokens revoked")
            raise invalid
        if (row.client_id != client.client_id or row.expires < self._ctx.now()
                or row.redirect_uri != redirect_uri):
            raise invalid
        if (not isinstance(code_verifier, str) or not CODE_VERIFIER.fullmatch(code_verifier)
                or not hmac.compare_digest(b64url_sha256(code_verifier), row.code_challenge)):
            raise Unauthenticated("the PKCE code verifier does not match", "invalid_grant")
        try:
            principal = self._accounts.principal(row.username, scopes=frozenset(
                row.scopes.split()), patient=row.launch_patient)
        except Unauthenticated as exc:
            raise Unauthenticated("the account is unknown or disabled", "invalid_grant") from exc
        response = self._respond(principal, client, family=code_hash, nonce=row.nonce,
                                 auth_time=int(row.auth_time))
        _, claims = peek(response.access_token)
        with self._ctx.engine.begin() as conn:
            conn.execute(update(auth_codes).where(auth_codes.c.code_hash == code_hash).values(
                access_jti=claims["jti"], access_expires=claims["exp"]))
        # A replay racing this redemption may have revoked the family before our tokens
        # were recorded: look again now that they are.
        with self._ctx.engine.connect() as conn:
            replayed = conn.execute(select(auth_codes.c.replayed)
                                    .where(auth_codes.c.code_hash == code_hash)).scalar()
        if replayed:
            self._revoke_family(code_hash)
            raise invalid
        return response

    # --- client credentials, refresh, CLI tokens ---------------------------------------------

    def client_credentials(self, client: Client, scopes: Iterable[str] | str,
                           ttl: int | None = None) -> TokenResponse:
        if client.public or "client_credentials" not in client.grant_types:
            raise Unauthenticated("this client may not use client credentials",
                                  "unauthorized_client")
        allowed = {s for s in client.scopes if s.startswith("system/")}
        granted = self._scopes(scopes if scopes else allowed, allowed)
        principal = Principal(kind=CLIENT, id=client.client_id, roles=client.roles,
                              scopes=granted, name=client.name)
        lifetime = self._ttl(ttl)
        token, _, _ = self._access_token(principal, client.client_id, lifetime)
        return TokenResponse(access_token=token, expires_in=lifetime,
                             scope=" ".join(sorted(granted)))

    def _ttl(self, ttl: int | None) -> int:
        if ttl is None:
            return self._ctx.settings.access_token_ttl
        if not 0 < ttl <= MAX_ISSUE_TTL:
            raise InvalidInput(f"the lifetime must be 1 to {MAX_ISSUE_TTL} seconds")
        return ttl

    def issue_token(self, username: str, ttl: int, scopes: Iterable[str] = ()) -> str:
        try:
            requested = scope_rules.split_scopes(list(scopes))
        except InvalidInput as exc:
            raise Unauthenticated(exc.message, "invalid_scope") from exc
        principal = self._accounts.principal(username, scopes=requested)
        token, _, _ = self._access_token(principal, None, self._ttl(ttl))
        return token

    def refresh(self, refresh_token: str, client: Client,
                scopes: Iterable[str] | str | None = None) -> TokenResponse:
        invalid = Unauthenticated("the refresh token is invalid, expired or revoked",
                                  "invalid_grant")
        if not isinstance(refresh_token, str) or not refresh_token \
                or len(refresh_token) > MAX_OPAQUE:
            raise invalid
        token_hash = digest(refresh_token)
        with self._ctx.engine.begin() as conn:
            row = conn.execute(select(auth_refresh_tokens)
                               .where(auth_refresh_tokens.c.token_hash == token_hash)).first()
            if row is None or row.client_id != client.client_id or row.revoked:
                raise invalid
            won = conn.execute(update(auth_refresh_tokens).where(
                auth_refresh_tokens.c.token_hash == token_hash,
                auth_refresh_tokens.c.rotated.is_(False)).values(rotated=True)).rowcount == 1
        if not won:
            self._revoke_family(row.family)
            self._alert(client.client_id, "rotated refresh token reused; its family revoked")
            raise invalid
        if row.expires < self._ctx.now():
            raise invalid
        original = frozenset(row.scopes.split())
        narrowed = original
        if scopes:
            try:
                narrowed = scope_rules.split_scopes(scopes)
            except InvalidInput as exc:
                raise Unauthenticated(exc.message, "invalid_scope") from exc
            if not narrowed <= original:
                raise Unauthenticated("a refresh cannot widen the granted scopes",
                                      "invalid_scope")
        if row.username is None:
            principal = Principal(kind=CLIENT, id=client.client_id, roles=client.roles,
                                  scopes=narrowed)
        else:
            try:
                principal = self._accounts.principal(row.username, scopes=narrowed,
                                                     patient=row.patient)
            except Unauthenticated as exc:
                raise invalid from exc
        response = self._respond(principal, client, family=row.family)
        # A reuse racing this rotation may have revoked the family before our new token was
        # stored: look again now that it is.
        with self._ctx.engine.connect() as conn:
            revoked = conn.execute(select(auth_refresh_tokens.c.revoked)
                                   .where(auth_refresh_tokens.c.token_hash == token_hash)).scalar()
        if revoked:
            self._revoke_family(row.family)
            raise invalid
        return response

    # --- revocation ---------------------------------------------------------------------------

    def _revoke_jti(self, jti: str, expires: int) -> None:
        now = self._ctx.now()
        with self._ctx.engine.begin() as conn:
            conn.execute(delete(auth_revoked).where(auth_revoked.c.expires < now))
        try:
            with self._ctx.engine.begin() as conn:
                conn.execute(insert(auth_revoked).values(jti=jti, expires=expires))
        except IntegrityError:  # already revoked
            pass

    def _revoke_family(self, family: str) -> None:
        with self._ctx.engine.begin() as conn:
            conn.execute(update(auth_refresh_tokens).where(
                auth_refresh_tokens.c.family == family).values(revoked=True))
            issued = [(r.access_jti, int(r.access_expires)) for r in conn.execute(
                select(auth_refresh_tokens.c.access_jti, auth_refresh_tokens.c.access_expires)
                .where(auth_refresh_tokens.c.family == family))]
            code = conn.execute(select(auth_codes.c.access_jti, auth_codes.c.access_expires)
                                .where(auth_codes.c.code_hash == family)).first()
        if code is not None and code.access_jti:
            issued.append((code.access_jti, int(code.access_expires)))
        for jti, expires in issued:
            self._revoke_jti(jti, expires)

    def _alert(self, client_id: str, description: str) -> None:
        self._ctx.audit(Principal(kind=CLIENT, id=client_id), type=SECURITY_ALERT,
                        action="E", outcome=8, how="web", outcome_desc=description,
                        durable=True)

    def revoke(self, token: str, client: Client | None = None) -> None:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            return
        if token.count(".") == 2:
            try:
                claims = verify(token, self._key, LOCAL_ALGORITHMS)
            except Unauthenticated:
                return
            jti, exp = claims.get("jti"), claims.get("exp")
            if (isinstance(jti, str) and isinstance(exp, int) and claims.get("iss")
                    == self._ctx.settings.issuer
                    and (client is None or claims.get("client_id") == client.client_id)):
                self._revoke_jti(jti, exp)
            return
        if len(token) > MAX_OPAQUE:
            return
        with self._ctx.engine.connect() as conn:
            row = conn.execute(select(auth_refresh_tokens.c.family, auth_refresh_tokens.c.client_id)
                               .where(auth_refresh_tokens.c.token_hash == digest(token))).first()
        if row is not None and (client is None or row.client_id == client.client_id):
            self._revoke_family(row.family)

    # --- verification -------------------------------------------------------------------------

    def verify_access_token(self, token: str, *, address: str = "") -> Principal:
        header, unverified = peek(token)
        issuer = unverified.get("iss")
        settings = self._ctx.settings
        if issuer == settings.issuer:
            return self._verify_local(token, address)
        if settings.external_issuer and issuer == settings.external_issuer:
            return self._verify_external(token, header.get("kid"), address)
        raise Unauthenticated("the token is not from an issuer we trust")

    def _verify_local(self, token: str, address: str) -> Principal:
        claims = verify(token, self._key, LOCAL_ALGORITHMS)
        settings = self._ctx.settings
        now = self._ctx.now()
        check_times(claims, now, leeway=0)
        if claims.get("iss") != settings.issuer:
            raise Unauthenticated("the token is not from an issuer we trust")
        if not audience_matches(claims, settings.base_url):
            raise Unauthenticated("the token is not meant for this server")
        jti, sub, kind = claims.get("jti"), claims.get("sub"), claims.get("kind")
        scope = claims.get("scope", "")
        if not (isinstance(jti, str) and JTI.fullmatch(jti) and isinstance(sub, str)
                and isinstance(scope, str)):
            raise Unauthenticated("the token is malformed")
        with self._ctx.engine.connect() as conn:
            if conn.execute(select(auth_revoked.c.jti)
                            .where(auth_revoked.c.jti == jti)).first() is not None:
                raise Unauthenticated("the token was revoked")
        scopes = frozenset(scope.split())
        if kind == USER:
            patient = claims.get("patient")
            try:
                return self._accounts.principal(
                    sub, scopes=scopes, patient=patient if isinstance(patient, str) else None,
                    session=jti, address=address)
            except Unauthenticated as exc:
                raise Unauthenticated("the token's account is unknown or disabled") from exc
        if kind == CLIENT:
            try:
                client = self._clients.client(sub)
            except Exception as exc:
                raise Unauthenticated("the token's client is no longer registered") from exc
            return Principal(kind=CLIENT, id=sub, roles=client.roles, scopes=scopes,
                             address=address, session=jti, name=client.name)
        raise Unauthenticated("the token is malformed")

    def _verify_external(self, token: str, kid: object, address: str) -> Principal:
        settings = self._ctx.settings
        if self._external is None:
            raise Unauthenticated("no keys are configured for the external issuer")
        try:
            keys = self._external.get(kid if isinstance(kid, str) else None)
        except Exception as exc:  # network, file or JWKS trouble: refuse, never accept
            raise Unauthenticated("the external issuer's keys are unavailable") from exc
        claims = verify(token, keys, ASYMMETRIC_ALGORITHMS)
        check_times(claims, self._ctx.now())
        if claims.get("iss") != settings.external_issuer:
            raise Unauthenticated("the token is not from an issuer we trust")
        if not audience_matches(claims, settings.external_audience or settings.base_url):
            raise Unauthenticated("the token is not meant for this server")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise Unauthenticated("the token has no subject")
        raw = _claim(claims, settings.external_role_claim)
        values = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        roles = frozenset(r for v in values if isinstance(v, str)
                          for r in self._role_map.get(v, ()))
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        jti = claims.get("jti")
        name = claims.get("name")
        return Principal(kind=USER, id=sub, roles=roles, scopes=scopes, address=address,
                         session=jti if isinstance(jti, str) else None,
                         issuer=settings.external_issuer,
                         name=name if isinstance(name, str) else "")
