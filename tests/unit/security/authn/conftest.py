"""An AuthService on a real SQLite database with a real audit trail and a clock we move."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from vesalius.config import Settings
from vesalius.database.engine import make_engine
from vesalius.security.audit import AuditStore, open_audit_store
from vesalius.security.audit.auditor import Auditor
from vesalius.security.audit.model import AuditRecord
from vesalius.security.authn import AuthService, Client, TokenResponse

REDIRECT = "http://127.0.0.1:8080/callback"
APP_SCOPES = ("openid", "fhirUser", "profile", "launch/patient", "offline_access",
              "user/*.cruds", "patient/*.rs")


class Clock:
    """A clock the test moves by hand (tokens, codes, lockouts and sessions all read it)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Env:
    auth: AuthService
    clock: Clock
    settings: Settings
    store: AuditStore
    auditor: Auditor
    engine: Engine

    def audit(self) -> list[AuditRecord]:
        self.auditor.flush()
        return [AuditRecord.from_columns(entry.columns) for entry in self.store.entries()]

    def service(self, **changes: object) -> AuthService:
        """Another service on the same database and keys with changed settings."""
        return AuthService(self.engine, replace(self.settings, **changes), self.auditor,
                           clock=self.clock)

    @staticmethod
    def pkce() -> tuple[str, str]:
        """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        return verifier, challenge.rstrip(b"=").decode()

    def code(self, client: Client, username: str = "alice",
             scopes: str = "openid fhirUser offline_access user/Observation.rs",
             **extra: str) -> tuple[str, str]:
        """(code, verifier) for ``username`` signed in at /authorize."""
        verifier, challenge = self.pkce()
        code = self.auth.issue_code(self.auth.user_principal(username), client,
                                    redirect_uri=REDIRECT, scopes=scopes,
                                    code_challenge=challenge, code_challenge_method="S256",
                                    **extra)
        return code, verifier

    def code_flow(self, client: Client, username: str = "alice",
                  scopes: str = "openid fhirUser offline_access user/Observation.rs",
                  **extra: str) -> TokenResponse:
        """Authorization code + PKCE, as the /auth endpoints run it."""
        code, verifier = self.code(client, username, scopes, **extra)
        return self.auth.redeem_code(code, client, redirect_uri=REDIRECT,
                                     code_verifier=verifier)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    settings = Settings(data_dir=tmp_path / "data", public_base_url="https://ehr.example.org")
    settings.data_dir.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{settings.data_dir / 'index.sqlite3'}", writer=True)
    store = open_audit_store(engine, settings.data_dir)
    auditor = Auditor(store, observer="test")
    clock = Clock()
    auth = AuthService(engine, settings, auditor, clock=clock)
    auth.create()
    yield Env(auth, clock, settings, store, auditor, engine)
    auditor.stop()
    engine.dispose()


@pytest.fixture
def alice(env: Env) -> str:
    """A clinician's password."""
    return env.auth.add_user("alice", ["clinician"], password="Correct-horse-42",
                             practitioner="pract-1", organization="org-1", name="Alice Doe")


@pytest.fixture
def app(env: Env) -> Client:
    env.auth.add_client("app", public=True, redirect_uris=[REDIRECT], scopes=APP_SCOPES)
    return env.auth.client("app")
