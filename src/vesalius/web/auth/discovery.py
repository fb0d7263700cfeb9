"""Discovery documents and the provider's public keys.

- ``/.well-known/openid-configuration``: OpenID Connect Discovery 1.0 §4
  (https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig);
- ``/.well-known/smart-configuration`` (and the same under ``/fhir``, where SMART apps look
  for it: https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known);
- ``/auth/jwks``: the public keys tokens are signed with (RFC 7517).

All public, all cacheable for a short while: the keys change only on rotation, and a client
that meets an unknown ``kid`` fetches again.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vesalius.web.auth.provider import Provider

CACHE = {"Cache-Control": "public, max-age=300"}


async def openid_configuration(provider: Provider, request: Request) -> Response:
    return JSONResponse(await provider.call(provider.auth.discovery), headers=CACHE)


async def smart_configuration(provider: Provider, request: Request) -> Response:
    return JSONResponse(await provider.call(provider.auth.smart_configuration), headers=CACHE)


async def jwks(provider: Provider, request: Request) -> Response:
    return JSONResponse(await provider.call(provider.auth.jwks), headers=CACHE,
                        media_type="application/jwk-set+json")
