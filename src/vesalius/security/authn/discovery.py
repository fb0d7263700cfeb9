"""Metadata documents of the built-in provider.

- ``/.well-known/openid-configuration``: OpenID Connect Discovery 1.0 §3
  (https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata);
- ``/.well-known/smart-configuration``: SMART App Launch v2 §"Conformance"
  (https://hl7.org/fhir/smart-app-launch/conformance.html).
"""

from __future__ import annotations

from vesalius.config import Settings
from vesalius.security.authn.model import AUTH_METHODS, GRANT_TYPES
from vesalius.security.authn.scopes import SPECIAL_SCOPES
from vesalius.security.authn.tokens import ASYMMETRIC_ALGORITHMS, LOCAL_ALGORITHMS

#: Scopes we advertise (any resource type may replace ``*``).
ADVERTISED_SCOPES = [*sorted(SPECIAL_SCOPES), "patient/*.cruds", "user/*.cruds",
                     "system/*.cruds", "patient/*.rs", "user/*.rs", "system/*.rs",
                     "patient/*.read", "user/*.read", "system/*.read"]
CLIENT_AUTH_METHODS = list(AUTH_METHODS)
CAPABILITIES = ["launch-standalone", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric", "context-standalone-patient",
                "permission-offline", "permission-online", "permission-patient",
                "permission-user", "permission-v1", "permission-v2", "sso-openid-connect"]


def endpoints(settings: Settings) -> dict[str, str]:
    issuer = settings.issuer
    return {"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token", "revocation_endpoint": f"{issuer}/revoke",
            "jwks_uri": f"{issuer}/jwks", "userinfo_endpoint": f"{issuer}/userinfo",
            "end_session_endpoint": f"{issuer}/logout"}


def openid_configuration(settings: Settings) -> dict[str, object]:
    return {**endpoints(settings),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANT_TYPES),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(LOCAL_ALGORITHMS),
            "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": list(ASYMMETRIC_ALGORITHMS),
            "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ADVERTISED_SCOPES,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce",
                                 "name", "preferred_username", "fhirUser"]}


def smart_configuration(settings: Settings) -> dict[str, object]:
    return {**endpoints(settings),
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": list(ASYMMETRIC_ALGORITHMS),
            "scopes_supported": ADVERTISED_SCOPES,
            "response_types_supported": ["code"],
            "capabilities": CAPABILITIES,
            "code_challenge_methods_supported": ["S256"]}
