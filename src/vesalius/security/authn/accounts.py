"""Local accounts: creation, passwords, lockout, TOTP second factor, sign-in.

Lockout (OWASP Authentication Cheat Sheet, "Account Lockout"): after
``login_max_failures`` consecutive failures an account is locked for
``login_lockout_seconds``, and each further lock doubles the wait (capped at a day). The
counter is kept per username *as typed*, so unknown usernames lock exactly like real ones,
and an unknown username costs one argon2 verification like a known one: neither the answer
nor its timing says whether an account exists.

TOTP (RFC 6238, SHA-1, 6 digits, 30 s steps, the step before and after accepted for clock
drift): the last accepted step is stored and a code for that step or an earlier one is
refused, so an observed code cannot be replayed. Roles in ``mfa_required_roles`` must enrol:
after a correct password such a user gets ``mfa-enrollment-required`` with an ``otpauth://``
URI, and :meth:`Accounts.confirm_totp` completes enrolment with a first valid code.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from typing import Any

import pyotp
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from vesalius.core.errors import Conflict, InvalidInput, NotFound
from vesalius.security.authn import passwords
from vesalius.security.authn.context import Context, digest
from vesalius.security.authn.model import GENERIC_FAILURE, SignInResult, Unauthenticated
from vesalius.security.authn.tables import auth_lockouts, auth_users
from vesalius.security.principal import ROLES, USER, Principal

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
TOTP_STEP = 30
TOTP_CODE = re.compile(r"[0-9]{6}")
MAX_LOCK_SECONDS = 24 * 3600
LOCKED_MESSAGE = "Too many failed sign-ins. Try again later."
TOTP_ISSUER = "Vesalius"

# Audit codes (DICOM PS3.15 §A.5.3.8 User Authentication; §A.5.3.11 Security Alert).
USER_AUTHENTICATION, LOGIN = "110114", "110122"
SECURITY_ALERT, RESTRICTED_FUNCTION = "110113", "110132"


def check_username(username: str) -> str:
    if not isinstance(username, str) or USERNAME.fullmatch(username) is None:
        raise InvalidInput("a username has 1-64 letters, digits, '.', '_', '@' or '-' and "
                           "starts with a letter or digit")
    return username


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    out = frozenset(roles)
    unknown = out - set(ROLES)
    if unknown:
        raise InvalidInput(f"unknown role(s) {sorted(unknown)}; known: {', '.join(ROLES)}")
    if not out:
        raise InvalidInput("an account needs at least one role")
    return out


def _check_fhir_id(label: str, value: str | None) -> str | None:
    if value is not None and FHIR_ID.fullmatch(value) is None:
        raise InvalidInput(f"{label} must be a FHIR id (1-64 letters, digits, '-' or '.')")
    return value


class Accounts:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    # --- administration -------------------------------------------------------------------

    def add_user(self, username: str, roles: Iterable[str], *, password: str | None = None,
                 practitioner: str | None = None, patient: str | None = None,
                 organization: str | None = None, name: str = "",
                 by: Principal | None = None) -> str:
        check_username(username)
        role_set = check_roles(roles)
        _check_fhir_id("practitioner", practitioner)
        _check_fhir_id("patient", patient)
        _check_fhir_id("organization", organization)
        if "patient" in role_set and patient is None:
            raise InvalidInput("a patient account must be linked to its Patient (--patient)")
        if len(name) > 200:
            raise InvalidInput("the display name is too long")
        if password is None:
            password = passwords.generate_password()
        passwords.check_policy(password, username, self._ctx.settings.password_min_length)
        try:
            with self._ctx.engine.begin() as conn:
                conn.execute(insert(auth_users).values(
                    username=username, password_hash=passwords.hash_password(password),
                    roles=" ".join(sorted(role_set)), name=name, practitioner=practitioner,
                    patient=patient, organization=organization, disabled=False,
                    totp_secret=None, totp_pending=None, totp_last_step=0,
                    created=self._ctx.now()))
        except IntegrityError as exc:
            raise Conflict(f"the user {username!r} already exists") from exc
        self._admin_audit(by, "C", f"user {username} added with roles "
                          f"{','.join(sorted(role_set))}")
        return password

    def _admin_audit(self, by: Principal | None, action: str, description: str) -> None:
        if by is not None:
            self._ctx.audit(by, type=SECURITY_ALERT, subtype=RESTRICTED_FUNCTION, action=action,
                            outcome=0, how="cli", outcome_desc=description, durable=True)

    def _update(self, username: str, **values: Any) -> None:
        with self._ctx.engine.begin() as conn:
            done = conn.execute(update(auth_users).where(auth_users.c.username == username)
                                .values(**values)).rowcount
        if done != 1:
            raise NotFound(f"no user {username!r}")

    def set_password(self, username: str, password: str, *, by: Principal | None = None) -> None:
        passwords.check_policy(password, username, self._ctx.settings.password_min_length)
        self._update(username, password_hash=passwords.hash_password(password))
        self._admin_audit(by, "U", f"password of user {username} set")

    def disable_user(self, username: str, *, by: Principal | None = None) -> None:
        self._update(username, disabled=True)
        self._admin_audit(by, "U", f"user {username} disabled")

    def enable_user(self, username: str, *, by: Principal | None = None) -> None:
        self._update(username, disabled=False)
        self._admin_audit(by, "U", f"user {username} enabled")

    def reset_mfa(self, username: str, *, by: Principal | None = None) -> None:
        self._update(username, totp_secret=None, totp_pending=None, totp_last_step=0)
        self._admin_audit(by, "U", f"second factor of user {username} reset")

    def set_totp_secret(self, username: str, secret: str) -> None:
        """Enrol a known TOTP secret (base32) without a confirming code (the demo's admin)."""
        try:
            pyotp.TOTP(secret).now()
        except (ValueError, TypeError) as exc:
            raise InvalidInput("a TOTP secret is base32 text") from exc
        self._update(username, totp_secret=secret, totp_pending=None)

    def totp_secret(self, username: str) -> str:
        row = self.row(username)
        if row is None or not row.totp_secret:
            raise NotFound(f"user {username!r} has no TOTP secret")
        return str(row.totp_secret)

    def users(self) -> list[dict[str, object]]:
        with self._ctx.engine.connect() as conn:
            rows = conn.execute(select(auth_users).order_by(auth_users.c.username)).all()
        return [{"username": r.username, "name": r.name, "roles": r.roles.split(),
                 "practitioner": r.practitioner, "patient": r.patient,
                 "organization": r.organization, "disabled": bool(r.disabled),
                 "mfa": bool(r.totp_secret)} for r in rows]

    def row(self, username: str) -> Row[Any] | None:
        if not isinstance(username, str) or USERNAME.fullmatch(username) is None:
            return None
        with self._ctx.engine.connect() as conn:
            return conn.execute(select(auth_users)
                                .where(auth_users.c.username == username)).first()

    def principal(self, username: str, *, scopes: frozenset[str] = frozenset(),
                  patient: str | None = None, session: str | None = None,
                  address: str = "") -> Principal:
        """The principal of an enabled account (``Unauthenticated`` otherwise). A patient
        user's patient is their own, whatever launch context is asked for."""
        row = self.row(username)
        if row is None or row.disabled:
            raise Unauthenticated("the account is unknown or disabled", "access_denied")
        roles = frozenset(row.roles.split())
        return Principal(kind=USER, id=row.username, roles=roles, scopes=frozenset(scopes),
                         patient=row.patient if row.patient else patient,
                         practitioner=row.practitioner, organization=row.organization,
                         address=address, session=session, issuer="local", name=row.name)

    # --- sign-in ----------------------------------------------------------------------------

    def sign_in(self, username: str, password: str, totp: str | None,
                address: str) -> SignInResult:
        return self._attempt(username, password, address, totp=totp, enrolling=False)

    def confirm_totp(self, username: str, password: str, code: str,
                     address: str) -> SignInResult:
        return self._attempt(username, password, address, totp=code, enrolling=True)

    def _attempt(self, username: str, password: str, address: str, *, totp: str | None,
                 enrolling: bool) -> SignInResult:
        username = username if isinstance(username, str) else ""
        password = password if isinstance(password, str) else ""
        key = digest(username[:256])
        shown = username if USERNAME.fullmatch(username) else "(invalid username)"
        who = Principal(kind=USER, id=shown, address=address)
        now = self._ctx.now()
        remaining = self._locked_for(key, now)
        if remaining:
            self._audit_sign_in(who, 4, "refused: account locked")
            return SignInResult("locked", username, LOCKED_MESSAGE, retry_after=remaining)
        row = self.row(username)
        matches = passwords.verify_password(row.password_hash if row is not None
                                            else passwords.dummy_hash(), password)
        if row is None or not matches or row.disabled:
            return self._failed(key, now, who, username,
                                "disabled account" if row is not None and matches
                                else "wrong username or password")
        pending = row.totp_pending if enrolling else None
        secret = pending or row.totp_secret
        if secret:
            if not totp:
                return SignInResult("mfa-required", username,
                                    "Enter the code from your authenticator app.")
            if not self._accept_totp(row.username, secret, totp, int(row.totp_last_step), now):
                return self._failed(key, now, who, username, "wrong one-time code")
            if pending:
                self._update(row.username, totp_secret=pending, totp_pending=None)
        elif set(row.roles.split()) & set(self._ctx.settings.mfa_required_roles):
            secret = row.totp_pending or pyotp.random_base32()
            if not row.totp_pending:
                self._update(row.username, totp_pending=secret)
            uri = pyotp.TOTP(secret).provisioning_uri(name=row.username, issuer_name=TOTP_ISSUER)
            return SignInResult("mfa-enrollment-required", username,
                                "Your role needs a second factor: add this account to an "
                                "authenticator app and enter its code.", totp_uri=uri)
        self._clear_failures(key)
        if passwords.needs_rehash(row.password_hash):
            self._update(row.username, password_hash=passwords.hash_password(password))
        self._audit_sign_in(who, 0, "")
        return SignInResult("ok", username)

    def _failed(self, key: str, now: int, who: Principal, username: str,
                why: str) -> SignInResult:
        retry_after = self._count_failure(key, now)
        self._audit_sign_in(who, 4, f"refused: {why}" + (" (now locked)" if retry_after else ""))
        if retry_after:
            return SignInResult("locked", username, LOCKED_MESSAGE, retry_after=retry_after)
        return SignInResult("failed", username, GENERIC_FAILURE)

    def _audit_sign_in(self, who: Principal, outcome: int, description: str) -> None:
        self._ctx.audit(who, type=USER_AUTHENTICATION, subtype=LOGIN, action="E",
                        outcome=outcome, how="web", outcome_desc=description, durable=True)

    def _accept_totp(self, username: str, secret: str, code: str, last_step: int,
                     now: int) -> bool:
        if not isinstance(code, str) or TOTP_CODE.fullmatch(code) is None:
            return False
        generator = pyotp.TOTP(secret)
        current = now // TOTP_STEP
        for step in (current - 1, current, current + 1):
            if step > last_step and hmac.compare_digest(generator.generate_otp(step), code):
                # Conditional on the stored step, so two concurrent uses of one code cannot
                # both succeed.
                with self._ctx.engine.begin() as conn:
                    won = conn.execute(update(auth_users).where(
                        auth_users.c.username == username,
                        auth_users.c.totp_last_step < step).values(
                            totp_last_step=step)).rowcount
                return bool(won == 1)
        return False

    # --- lockout ----------------------------------------------------------------------------

    def _locked_for(self, key: str, now: int) -> int:
        with self._ctx.engine.connect() as conn:
            until = conn.execute(select(auth_lockouts.c.locked_until)
                                 .where(auth_lockouts.c.key == key)).scalar()
        return max(0, int(until) - now) if until is not None else 0

    def _count_failure(self, key: str, now: int) -> int:
        """Count a failure; when it locks the account, the seconds it stays locked."""
        settings = self._ctx.settings
        for _ in range(3):  # a concurrent first failure may insert the row under us
            try:
                with self._ctx.engine.begin() as conn:
                    return self._count_in(conn, key, now, settings.login_max_failures,
                                          settings.login_lockout_seconds)
            except IntegrityError:
                continue
        return 0

    @staticmethod
    def _count_in(conn: Connection, key: str, now: int, max_failures: int,
                  lockout: int) -> int:
        row = conn.execute(select(auth_lockouts).where(auth_lockouts.c.key == key)
                           .with_for_update()).first()
        if row is None:
            conn.execute(insert(auth_lockouts).values(key=key, failures=0, locks=0,
                                                      locked_until=0))
            failures, locks = 1, 0
        else:
            failures, locks = int(row.failures) + 1, int(row.locks)
        locked_until, seconds = 0, 0
        if failures >= max(1, max_failures):
            locks += 1
            seconds = min(MAX_LOCK_SECONDS, lockout * 2 ** min(locks - 1, 20))
            locked_until, failures = now + seconds, 0
        conn.execute(update(auth_lockouts).where(auth_lockouts.c.key == key).values(
            failures=failures, locks=locks, locked_until=locked_until))
        return seconds

    def _clear_failures(self, key: str) -> None:
        with self._ctx.engine.begin() as conn:
            conn.execute(update(auth_lockouts).where(auth_lockouts.c.key == key)
                         .values(failures=0, locks=0, locked_until=0))
