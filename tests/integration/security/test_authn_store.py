"""The identity core on each database (SQLite and PostgreSQL): tables, races, one flow."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vesalius.config import Settings
from vesalius.database.engine import make_engines
from vesalius.demo.accounts import DEMO_CLIENT_ID, describe, ensure_demo_accounts
from vesalius.node import build_auditor
from vesalius.security.audit.model import AuditRecord
from vesalius.security.authn import AuthService, Unauthenticated

REDIRECT = "http://127.0.0.1:8080/callback"


@pytest.fixture
def auth(settings: Settings) -> Iterator[AuthService]:
    reader, writer = make_engines(settings)
    auditor = build_auditor(settings, reader, writer)
    service = AuthService(writer, settings, auditor)
    service.create()
    yield service
    auditor.stop()
    writer.dispose()
    reader.dispose()


def _race(count: int, work: Callable[[], Any]) -> list[Any]:
    """Run ``work`` in ``count`` threads released together; their results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_create_is_idempotent_and_safe_to_race(settings: Settings) -> None:
    _, writer = make_engines(settings)
    services = [AuthService(writer, settings, None) for _ in range(4)]
    assert _race(4, lambda: services[0].create()) == [None] * 4
    services[1].create()
    assert services[2].jwks() == services[3].jwks()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_full_flow_and_single_use_under_races(auth: AuthService) -> None:
    password = auth.add_user("alice", ["clinician"], practitioner="p-1")
    assert auth.sign_in("alice", password, None, "127.0.0.1").ok
    auth.add_client("app", public=True, redirect_uris=[REDIRECT],
                    scopes=["openid", "offline_access", "user/*.rs"])
    app = auth.client("app")
    verifier, challenge = _pkce()
    code = auth.issue_code(auth.user_principal("alice"), app, redirect_uri=REDIRECT,
                           scopes="openid offline_access user/*.rs", code_challenge=challenge,
                           code_challenge_method="S256")
    results = _race(4, lambda: auth.redeem_code(code, app, redirect_uri=REDIRECT,
                                                code_verifier=verifier))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert all(isinstance(r, Unauthenticated) for r in results if r not in winners)
    # At most one redemption won (one that noticed the replay in time refuses too), and the
    # replay revoked whatever it got.
    assert len(winners) <= 1
    for winner in winners:
        with pytest.raises(Unauthenticated):
            auth.verify_access_token(winner.access_token)

    verifier, challenge = _pkce()
    code = auth.issue_code(auth.user_principal("alice"), app, redirect_uri=REDIRECT,
                           scopes="openid offline_access user/*.rs", code_challenge=challenge,
                           code_challenge_method="S256")
    tokens = auth.redeem_code(code, app, redirect_uri=REDIRECT, code_verifier=verifier)
    assert auth.verify_access_token(tokens.access_token).practitioner == "p-1"
    rotated = _race(3, lambda: auth.refresh(tokens.refresh_token or "", app))
    assert all(isinstance(r, Unauthenticated) for r in rotated if isinstance(r, Exception))
    for response in [tokens, *(r for r in rotated if not isinstance(r, Exception))]:
        with pytest.raises(Unauthenticated):  # the reuse revoked the whole family
            auth.verify_access_token(response.access_token)


def test_lockout_counts_every_concurrent_failure(auth: AuthService,
                                                 settings: Settings) -> None:
    auth.add_user("bob", ["nurse"], password="Correct-horse-42")
    results = _race(settings.login_max_failures,
                    lambda: auth.sign_in("bob", "Wrong-password-1", None, ""))
    assert [r.status for r in results].count("locked") == 1
    assert auth.sign_in("bob", "Correct-horse-42", None, "").status == "locked"


def test_demo_accounts_are_idempotent_and_audited_sign_ins(auth: AuthService,
                                                           settings: Settings) -> None:
    first = ensure_demo_accounts(auth, practitioner="pr-1", patient="pat-1",
                                 organization="org-1")
    again = ensure_demo_accounts(auth, practitioner="pr-1", patient="pat-1",
                                 organization="org-1")
    assert [a.username for a in first] == [a.username for a in again]
    roles = {a.username: a.role for a in first}
    assert roles == {"clinician": "clinician", "radiologist": "radiologist", "nurse": "nurse",
                     "clerk": "registration", "admin": "administrator", "auditor": "auditor",
                     "partner": "external", "patient": "patient"}
    for account in first:
        result = auth.sign_in(account.username, account.password, None, "")
        assert result.status == ("mfa-required" if account.totp_secret else "ok")
    assert auth.user_principal("clinician").practitioner == "pr-1"
    assert auth.user_principal("patient").patient == "pat-1"
    client = auth.client(DEMO_CLIENT_ID)
    assert client.public and f"{settings.base_url}/callback" in client.redirect_uris
    text = describe(first)
    assert "admin" in text and "TOTP secret" in text and "Demo-Clinician-2025" in text
    auth._ctx.auditor.flush()  # type: ignore[union-attr]
    store = auth._ctx.auditor.store  # type: ignore[union-attr]
    records = [AuditRecord.from_columns(e.columns) for e in store.entries()]
    assert sum(r.type == "110114" and r.outcome == 0 for r in records) == 7
    assert store.verify() == []
