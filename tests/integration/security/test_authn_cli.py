"""``vesalius user|client|token`` as an operator runs them: a real process, a real data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from joserfc.jwk import ECKey

from vesalius.config import Settings
from vesalius.database.engine import make_engines
from vesalius.security.audit import open_audit_store
from vesalius.security.audit.model import AuditRecord
from vesalius.security.authn import AuthService

VESALIUS = [sys.executable, "-m", "vesalius.cli.main"]


def _run(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VESALIUS, *args, "--data-dir", str(data_dir)], input=stdin,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


def test_user_client_token_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    added = _run(data, "user", "add", "alice", "--role", "clinician", "--role", "radiologist",
                 "--practitioner", "pr-1", "--name", "Alice Doe")
    assert added.returncode == 0, added.stderr
    password = added.stdout.split("password: ")[1].strip()
    assert len(password) >= 20
    typed = _run(data, "user", "add", "bob", "--role", "nurse", "--password-stdin",
                 stdin="Typed-password-9\n")
    assert typed.returncode == 0 and "password" not in typed.stdout
    weak = _run(data, "user", "add", "carol", "--role", "nurse", "--password-stdin",
                stdin="short\n")
    assert weak.returncode == 2 and "at least" in weak.stderr and "short" not in weak.stderr
    assert _run(data, "user", "add", "alice", "--role", "nurse").returncode == 2
    assert _run(data, "user", "add", "dave", "--role", "god").returncode == 2
    assert _run(data, "user", "disable", "bob").returncode == 0
    assert _run(data, "user", "disable", "nobody").returncode == 2
    assert _run(data, "user", "reset-mfa", "alice").returncode == 0
    listing = _run(data, "user", "list").stdout
    assert "alice" in listing and "disabled" in listing and password not in listing

    key = ECKey.generate_key("P-384", {"kid": "k"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    keyed = _run(data, "client", "add", "backend", "--jwks", str(jwks), "--scope",
                 "system/*.rs", "--role", "clinician")
    assert keyed.returncode == 0 and "secret" not in keyed.stdout, keyed.stderr
    secret_client = _run(data, "client", "add", "svc", "--scope", "system/*.rs")
    assert "secret: " in secret_client.stdout
    public = _run(data, "client", "add", "app", "--public", "--redirect-uri",
                  "http://127.0.0.1:8080/cb", "--scope", "openid", "--scope", "user/*.rs")
    assert public.returncode == 0 and "secret" not in public.stdout
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    assert _run(data, "client", "add", "leaky", "--jwks", str(private)).returncode == 2
    assert _run(data, "client", "add", "bad", "--jwks", str(tmp_path / "none")).returncode == 2

    user_token = _run(data, "token", "issue", "--user", "alice", "--ttl", "120", "--scope",
                      "user/*.rs").stdout.strip()
    client_token = _run(data, "token", "issue", "--client", "backend", "--ttl",
                        "60").stdout.strip()
    assert _run(data, "token", "issue", "--user", "bob", "--ttl", "60").returncode == 2
    assert _run(data, "token", "issue", "--user", "alice", "--ttl", "0").returncode == 2
    assert _run(data, "token", "issue", "--user", "alice", "--ttl", "60", "--scope",
                "everything").returncode == 2

    settings = Settings(data_dir=data)
    _, writer = make_engines(settings)
    auth = AuthService(writer, settings, None)
    principal = auth.verify_access_token(user_token)
    assert (principal.id, principal.roles, principal.practitioner) == (
        "alice", {"clinician", "radiologist"}, "pr-1")
    assert auth.verify_access_token(client_token).scopes == {"system/*.rs"}
    assert auth.sign_in("alice", password, None, "").ok

    store = open_audit_store(writer, data)
    records = [AuditRecord.from_columns(e.columns) for e in store.entries()]
    cli = [r for r in records if r.how == "cli"]
    assert {(r.type, r.subtype) for r in cli} == {("110113", "110132")}
    assert any("alice added" in r.outcome_desc for r in cli)
    assert any("client backend registered" in r.outcome_desc for r in cli)
    assert sum("bearer token issued" in r.outcome_desc for r in cli) == 2
    assert all(r.who.startswith("system:cli:") for r in cli)
    assert all(password not in r.outcome_desc for r in records)
    assert store.verify() == []
