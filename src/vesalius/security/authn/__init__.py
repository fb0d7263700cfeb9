"""The identity core: local accounts, OAuth clients, tokens and web sessions (no HTTP).

``vesalius.web.auth`` puts the OpenID Connect / SMART App Launch endpoints over
:class:`AuthService`; the CLI and the demo create accounts and clients through it.

API notes for the edges (additions to the agreed interface, nothing changed):

- administrative methods (``add_user``, ``set_password``, ``disable_user``, ``enable_user``,
  ``reset_mfa``, ``add_client``) take ``by: Principal | None``; when given, the change is
  audited (110113 Security Alert / 110132 Use of Restricted Function, how ``cli``);
- ``client_credentials(client, scopes, ttl=None)``: ``ttl`` for ``vesalius token issue``;
- ``set_totp_secret(username, secret)`` enrols a known secret (the demo admin);
- ``clients()`` lists registered clients;
- ``scopes`` may be given as an iterable or as the space-separated string of a request;
- ``issue_code`` refuses an unregistered ``redirect_uri`` with ``invalid_request``: the
  edge must then show an error page and never redirect (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

from vesalius.security.authn.model import (
    Client,
    SignInResult,
    TokenResponse,
    Unauthenticated,
)
from vesalius.security.authn.scopes import Scope, allows, parse_scope
from vesalius.security.authn.service import AuthService

__all__ = ["AuthService", "Client", "Scope", "SignInResult", "TokenResponse",
           "Unauthenticated", "allows", "parse_scope"]
