"""The built-in web app's OAuth client, present on every installation.

The app served at ``/`` signs in as the public SMART client ``vesalius-web`` (authorization
code + PKCE, no secret: https://hl7.org/fhir/smart-app-launch/app-launch.html). It must exist
without the demo, with redirect URIs under the configured ``base_url``; when ``base_url``
changes, the new URIs are added and the old ones kept (an administrator may rely on them).
"""

from __future__ import annotations

import contextlib
import logging

from vesalius.core.errors import Conflict, InvalidInput, NotFound
from vesalius.security.authn.service import AuthService

WEB_CLIENT_ID = "vesalius-web"
WEB_CLIENT_SCOPES = ("openid", "fhirUser", "launch/patient", "offline_access", "user/*.cruds",
                     "patient/*.rs")

log = logging.getLogger(__name__)


def web_redirect_uris(base_url: str) -> list[str]:
    return [f"{base_url}/", f"{base_url}/callback"]


def ensure_web_client(auth: AuthService) -> None:
    """Register ``vesalius-web`` or add this ``base_url``'s redirect URIs (idempotent, safe to
    race with another process starting)."""
    uris = web_redirect_uris(auth.settings.base_url)
    try:
        try:
            client = auth.client(WEB_CLIENT_ID)
        except NotFound:
            with contextlib.suppress(Conflict):  # registered concurrently by another process
                auth.add_client(WEB_CLIENT_ID, name="Vesalius web app", public=True,
                                redirect_uris=uris, scopes=WEB_CLIENT_SCOPES)
            return
        if not set(uris) <= set(client.redirect_uris):
            auth.add_redirect_uris(WEB_CLIENT_ID, uris)
    except InvalidInput as exc:
        # e.g. plain http on a non-loopback address: the web app cannot sign in there, but
        # every other surface must still start.
        log.warning("the web app's sign-in is not available at %s: %s",
                    auth.settings.base_url, exc)
