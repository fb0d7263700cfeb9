"""Web sessions for the provider's own pages (sign-in, consent, sign-out).

The cookie value is a random 256-bit token; only its SHA-256 is stored. The CSRF token is
derived from the session id by a one-way hash (nothing more to store, and it reveals nothing
about the cookie) and is compared by the edge with what a form posts back — the synchronizer
token pattern of the OWASP CSRF Prevention Cheat Sheet. A session ends after
``session_idle_timeout`` seconds without use and ``session_max_age`` seconds after sign-in,
whichever comes first (OWASP Session Management Cheat Sheet, "Session Expiration").
"""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, insert, select, update

from vesalius.security.authn.accounts import Accounts
from vesalius.security.authn.context import Context, digest, new_token
from vesalius.security.authn.model import Unauthenticated
from vesalius.security.authn.tables import auth_sessions
from vesalius.security.principal import Principal

MAX_SESSION_ID = 128


def csrf_token(session_id: str) -> str:
    return hashlib.sha256(b"vesalius-csrf\0" + session_id.encode("utf-8")).hexdigest()


class Sessions:
    def __init__(self, ctx: Context, accounts: Accounts) -> None:
        self._ctx = ctx
        self._accounts = accounts

    def open(self, username: str, address: str) -> tuple[str, str]:
        self._accounts.principal(username)  # the account exists and is enabled
        session_id = new_token()
        now = self._ctx.now()
        with self._ctx.engine.begin() as conn:
            conn.execute(delete(auth_sessions).where(
                auth_sessions.c.created < now - self._ctx.settings.session_max_age))
            conn.execute(insert(auth_sessions).values(
                id_hash=digest(session_id), username=username, address=address[:200],
                created=now, last_seen=now))
        return session_id, csrf_token(session_id)

    def get(self, session_id: str) -> tuple[Principal, str] | None:
        if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID:
            return None
        id_hash = digest(session_id)
        now = self._ctx.now()
        settings = self._ctx.settings
        with self._ctx.engine.connect() as conn:
            row = conn.execute(select(auth_sessions)
                               .where(auth_sessions.c.id_hash == id_hash)).first()
        if row is None:
            return None
        if (now - row.last_seen > settings.session_idle_timeout
                or now - row.created > settings.session_max_age):
            self.close(session_id)
            return None
        try:
            principal = self._accounts.principal(row.username, session=id_hash[:16],
                                                 address=row.address)
        except Unauthenticated:
            self.close(session_id)
            return None
        with self._ctx.engine.begin() as conn:
            conn.execute(update(auth_sessions).where(auth_sessions.c.id_hash == id_hash)
                         .values(last_seen=now))
        return principal, csrf_token(session_id)

    def close(self, session_id: str) -> None:
        if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID:
            return
        with self._ctx.engine.begin() as conn:
            conn.execute(delete(auth_sessions).where(auth_sessions.c.id_hash == digest(session_id)))
