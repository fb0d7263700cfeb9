"""Demo sign-in accounts and the demo SMART app, one per role.

These are local demo data: the passwords are fixed and printed so that anyone trying the
demo can sign in as each role. Never run a demo installation with real patients. The
administrator's TOTP secret is derived from a fixed string for the same reason (so the
printout can show it and an authenticator app can be set up from it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from dataclasses import dataclass, field

from vesalius.core.errors import Conflict
from vesalius.security.authn import AuthService
from vesalius.security.authn.builtin import WEB_CLIENT_ID, ensure_web_client

#: The public SMART app registered for the demo (the built-in web UI uses it too).
#: The SMART app the demo accounts sign in to: the built-in web app's client.
DEMO_CLIENT_ID = WEB_CLIENT_ID


def demo_totp_secret(username: str) -> str:
    """A base32 TOTP secret derived from the username (demo only: anyone can compute it)."""
    raw = hashlib.sha256(f"vesalius-demo-totp:{username}".encode()).digest()[:20]
    return base64.b32encode(raw).decode("ascii")


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    #: Fixed demo password (shown on purpose; see the module docstring).
    password: str = field(repr=False)
    description: str
    totp_secret: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        line = f"{self.username:11} password {self.password:24} {self.description}"
        if self.totp_secret:
            line += f"; TOTP secret {self.totp_secret}"
        return line


def _password(username: str) -> str:
    return f"Demo-{username.capitalize()}-2025"


def ensure_demo_accounts(auth: AuthService, *, practitioner: str | None, patient: str | None,
                         organization: str | None) -> list[DemoAccount]:
    """Create the demo accounts and the demo app when missing (idempotent) and return how to
    sign in as each. Existing accounts are left as they are."""
    plan: list[tuple[str, str, str, dict[str, str | None]]] = [
        ("clinician", "clinician", "a clinician linked to the demo practitioner",
         {"practitioner": practitioner, "organization": organization}),
        ("radiologist", "radiologist", "reads and reports imaging",
         {"organization": organization}),
        ("nurse", "nurse", "nursing staff", {"organization": organization}),
        ("clerk", "registration", "registration clerk (demographics, scheduling)",
         {"organization": organization}),
        ("admin", "administrator", "administrator (second factor required)",
         {"organization": organization}),
        ("auditor", "auditor", "reads the audit trail", {"organization": organization}),
        ("partner", "external", "an external partner (consent-bound access)", {}),
    ]
    if patient is not None:
        plan.append(("patient", "patient", "the demo patient (patient portal)",
                     {"patient": patient}))
    existing = {str(u["username"]) for u in auth.users()}
    accounts = []
    for username, role, description, links in plan:
        if username not in existing:
            with contextlib.suppress(Conflict):  # created concurrently by another process
                auth.add_user(username, [role], password=_password(username),
                              name=f"Demo {description.split(' (')[0]}",
                              practitioner=links.get("practitioner"),
                              patient=links.get("patient"),
                              organization=links.get("organization"))
        secret = None
        if role == "administrator":
            secret = demo_totp_secret(username)
            if username not in existing:
                auth.set_totp_secret(username, secret)
        accounts.append(DemoAccount(username, role, _password(username), description, secret))
    ensure_web_client(auth)  # the app the printout tells people to sign in to
    return accounts


def describe(accounts: list[DemoAccount]) -> str:
    """The printout: how to sign in as each demo account."""
    lines = ["Demo accounts (demo data only; fixed passwords):"]
    lines += [f"  {account.describe()}" for account in accounts]
    return "\n".join(lines)
