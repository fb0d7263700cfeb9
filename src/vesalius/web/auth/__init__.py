"""The built-in OpenID Connect / SMART on FHIR provider over HTTP, and request authentication.

The identity service (:mod:`vesalius.security.authn`) knows accounts, clients, codes, tokens
and sessions; this package only speaks HTTP for it:

- ``routes``: ``/auth/authorize``, ``/auth/login``, ``/auth/logout``, ``/auth/token``,
  ``/auth/revoke``, ``/auth/userinfo``, ``/auth/jwks`` and the ``/.well-known`` documents;
- ``middleware.Authenticate``: a bearer token on every other request, turned into the
  request's :class:`~vesalius.security.principal.Principal`.

SMART App Launch 2.x (https://hl7.org/fhir/smart-app-launch/) is the profile followed:
authorization code with PKCE S256 for apps acting for a user, client credentials with a
secret or a signed JWT for backend services.
"""

from __future__ import annotations

from vesalius.web.auth.middleware import Authenticate, is_public
from vesalius.web.auth.provider import Provider
from vesalius.web.auth.routes import auth_routes, smart_configuration_route, well_known_routes

__all__ = ["Authenticate", "Provider", "auth_routes", "is_public",
           "smart_configuration_route", "well_known_routes"]
