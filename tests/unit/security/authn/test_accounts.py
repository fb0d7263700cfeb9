"""Local accounts: password policy, lockout with back-off, TOTP, sessions, audit."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from vesalius.core.errors import Conflict, InvalidInput, NotFound
from vesalius.security.authn import Unauthenticated
from vesalius.security.authn.passwords import generate_password

PASSWORD = "Correct-horse-42"


@pytest.mark.parametrize(("password", "rule"), [
    ("Short-1", "at least 12"),
    ("alllowercaseletters", "mix"),
    ("123456789012345", "mix"),
    ("!!!!!!!!!!!!!!!!", "mix"),
    ("BOB-the-builder", "username"),
    ("x1" * 600, "at most"),
])
def test_password_policy(env: Any, password: str, rule: str) -> None:
    username = "bob-the-builder"
    with pytest.raises(InvalidInput, match=rule) as caught:
        env.auth.add_user(username, ["nurse"], password=password)
    assert password not in str(caught.value)


def test_generated_passwords(env: Any) -> None:
    password = env.auth.add_user("bob", ["nurse"])
    assert len(password) >= 20 and password != generate_password()
    assert env.auth.sign_in("bob", password, None, "").status == "ok"


@pytest.mark.parametrize(("username", "roles", "extra"), [
    ("", ["nurse"], {}), ("-x", ["nurse"], {}), ("a b", ["nurse"], {}), ("x" * 65, ["nurse"], {}),
    ("ok", [], {}), ("ok", ["superuser"], {}), ("ok", ["patient"], {}),
    ("ok", ["nurse"], {"practitioner": "bad id!"}), ("ok", ["nurse"], {"name": "n" * 300}),
    ("ok\n", ["nurse"], {}), ("ok\x00", ["nurse"], {}),
])
def test_add_user_refuses_bad_input(env: Any, username: str, roles: list[str],
                                    extra: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        env.auth.add_user(username, roles, password=PASSWORD, **extra)


def test_add_user_twice_and_unknown_users(env: Any, alice: str) -> None:
    with pytest.raises(Conflict):
        env.auth.add_user("alice", ["nurse"], password=PASSWORD)
    for call in (env.auth.disable_user, env.auth.enable_user, env.auth.reset_mfa):
        with pytest.raises(NotFound):
            call("nobody")
    with pytest.raises(Unauthenticated):
        env.auth.user_principal("nobody")


def test_users_list_has_no_secrets(env: Any, alice: str) -> None:
    [user] = env.auth.users()
    assert user["username"] == "alice" and user["roles"] == ["clinician"]
    assert alice not in repr(user) and "argon2" not in repr(user)


def test_sign_in_success_failure_and_audit(env: Any, alice: str) -> None:
    assert env.auth.sign_in("alice", alice, None, "10.1.1.1").status == "ok"
    wrong = env.auth.sign_in("alice", "Wrong-password-1", None, "10.1.1.1")
    unknown = env.auth.sign_in("nobody", "Wrong-password-1", None, "10.1.1.1")
    assert wrong.status == unknown.status == "failed"
    assert wrong.message == unknown.message  # never says whether the account exists
    records = [r for r in env.audit() if r.type == "110114"]
    assert [(r.who, r.outcome, r.subtype, r.how, r.address) for r in records] == [
        ("user:alice", 0, "110122", "web", "10.1.1.1"),
        ("user:alice", 4, "110122", "web", "10.1.1.1"),
        ("user:nobody", 4, "110122", "web", "10.1.1.1")]
    assert all(alice not in r.outcome_desc for r in records)


def test_disabled_account_fails_like_a_wrong_password(env: Any, alice: str) -> None:
    env.auth.disable_user("alice")
    result = env.auth.sign_in("alice", alice, None, "")
    assert result.status == "failed" and "disabled" not in result.message
    env.auth.enable_user("alice")
    assert env.auth.sign_in("alice", alice, None, "").ok


@pytest.mark.parametrize(("username", "password"), [
    ("", ""), ("alice", ""), ("a" * 10000, "b" * 10000), ("alice\x00", PASSWORD),
    ("' OR 1=1 --", "' OR 1=1 --"), (None, None), ("alice", "x" * 100000), ("ålice", "pässword"),
])
def test_hostile_sign_in_input(env: Any, alice: str, username: Any, password: Any) -> None:
    assert env.auth.sign_in(username, password, None, "").status == "failed"


def test_lockout_with_back_off(env: Any, alice: str) -> None:
    lockout = env.settings.login_lockout_seconds
    for _ in range(env.settings.login_max_failures - 1):
        assert env.auth.sign_in("alice", "Wrong-password-1", None, "").status == "failed"
    locked = env.auth.sign_in("alice", "Wrong-password-1", None, "")
    assert (locked.status, locked.retry_after) == ("locked", lockout)
    # Even the right password is refused while locked.
    assert env.auth.sign_in("alice", alice, None, "").status == "locked"
    env.clock.advance(lockout)
    for _ in range(env.settings.login_max_failures - 1):
        env.auth.sign_in("alice", "Wrong-password-1", None, "")
    second = env.auth.sign_in("alice", "Wrong-password-1", None, "")
    assert (second.status, second.retry_after) == ("locked", 2 * lockout)
    env.clock.advance(2 * lockout - 1)
    assert env.auth.sign_in("alice", alice, None, "").retry_after == 1
    env.clock.advance(1)
    assert env.auth.sign_in("alice", alice, None, "").ok
    # Success resets the back-off.
    for _ in range(env.settings.login_max_failures):
        last = env.auth.sign_in("alice", "Wrong-password-1", None, "")
    assert last.retry_after == lockout


def test_unknown_users_lock_like_known_ones(env: Any) -> None:
    results = [env.auth.sign_in("ghost", "Wrong-password-1", None, "")
               for _ in range(env.settings.login_max_failures + 1)]
    assert [r.status for r in results][-2:] == ["locked", "locked"]
    assert results[-1].message == "Too many failed sign-ins. Try again later."


def _code(secret: str, env: Any, offset: int = 0) -> str:
    """The RFC 6238 code an authenticator app shows at the test clock's time (+ steps)."""
    return str(pyotp.TOTP(secret).at(env.clock().timestamp() + 30 * offset))


def test_mfa_enrollment_then_totp_and_no_replay(env: Any) -> None:
    env.auth.add_user("root", ["administrator"], password=PASSWORD)
    enrolment = env.auth.sign_in("root", PASSWORD, None, "")
    assert enrolment.status == "mfa-enrollment-required"
    assert enrolment.totp_uri and enrolment.totp_uri not in repr(enrolment)
    secret = pyotp.parse_uri(enrolment.totp_uri).secret
    # The same pending secret is offered again until confirmed.
    assert env.auth.sign_in("root", PASSWORD, None, "").totp_uri == enrolment.totp_uri
    assert env.auth.confirm_totp("root", "Wrong-password-1", _code(secret, env), "").status \
        == "failed"
    assert env.auth.confirm_totp("root", PASSWORD, "000000" if _code(secret, env) != "000000"
                                 else "111111", "").status == "failed"
    assert env.auth.confirm_totp("root", PASSWORD, _code(secret, env), "").ok
    assert env.auth.users()[0]["mfa"] is True
    # Enrolled: the password alone is not enough, and a code works once.
    assert env.auth.sign_in("root", PASSWORD, None, "").status == "mfa-required"
    env.clock.advance(30)
    code = _code(secret, env)
    assert env.auth.sign_in("root", PASSWORD, code, "").ok
    assert env.auth.sign_in("root", PASSWORD, code, "").status == "failed"
    # The previous step's code is older than the one used: refused too.
    assert env.auth.sign_in("root", PASSWORD, _code(secret, env, -1), "").status == "failed"
    # The next step (clock drift) is accepted once.
    assert env.auth.sign_in("root", PASSWORD, _code(secret, env, 1), "").ok


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12345\n", "١٢٣٤٥٦",
                                  "1" * 10000])
def test_malformed_totp_codes(env: Any, code: str) -> None:
    env.auth.add_user("root", ["administrator"], password=PASSWORD)
    env.auth.set_totp_secret("root", pyotp.random_base32())
    assert env.auth.sign_in("root", PASSWORD, code, "").status in ("failed", "mfa-required")


def test_reset_mfa_and_demo_secret(env: Any) -> None:
    env.auth.add_user("root", ["administrator"], password=PASSWORD)
    secret = pyotp.random_base32()
    env.auth.set_totp_secret("root", secret)
    assert env.auth.totp_secret_for_demo("root") == secret
    assert env.auth.sign_in("root", PASSWORD, _code(secret, env), "").ok
    env.auth.reset_mfa("root")
    assert env.auth.sign_in("root", PASSWORD, None, "").status == "mfa-enrollment-required"
    with pytest.raises(InvalidInput):
        env.auth.set_totp_secret("root", "not base32!")


def test_totp_for_roles_without_requirement_is_still_checked(env: Any, alice: str) -> None:
    secret = pyotp.random_base32()
    env.auth.set_totp_secret("alice", secret)
    assert env.auth.sign_in("alice", alice, None, "").status == "mfa-required"
    assert env.auth.sign_in("alice", alice, _code(secret, env), "").ok


def test_admin_changes_are_audited_when_someone_is_named(env: Any) -> None:
    from vesalius.security.principal import SYSTEM, Principal

    operator = Principal(kind=SYSTEM, id="cli:ops")
    env.auth.add_user("bob", ["nurse"], password=PASSWORD, by=operator)
    env.auth.disable_user("bob", by=operator)
    env.auth.add_client("svc", scopes=["system/*.rs"], by=operator)
    records = [r for r in env.audit() if r.who == "system:cli:ops"]
    assert [(r.type, r.subtype, r.action, r.how) for r in records] == [
        ("110113", "110132", "C", "cli"), ("110113", "110132", "U", "cli"),
        ("110113", "110132", "C", "cli")]
    assert "bob" in records[0].outcome_desc and PASSWORD not in records[0].outcome_desc


def test_sessions_expire_when_idle_and_when_old(env: Any, alice: str) -> None:
    session_id, csrf = env.auth.open_session("alice", "10.0.0.1")
    assert len(session_id) >= 43 and len(csrf) == 64 and csrf != session_id
    principal, again = env.auth.session(session_id)
    assert principal.id == "alice" and again == csrf and principal.session
    assert session_id not in principal.session
    idle = env.settings.session_idle_timeout
    env.clock.advance(idle - 1)
    assert env.auth.session(session_id) is not None  # touching extends the idle time
    env.clock.advance(idle - 1)
    assert env.auth.session(session_id) is not None
    env.clock.advance(idle + 1)
    assert env.auth.session(session_id) is None
    # Absolute lifetime, however busy the session is.
    session_id, _ = env.auth.open_session("alice", "")
    for _ in range(env.settings.session_max_age // (idle - 1) + 1):
        env.clock.advance(idle - 1)
        current = env.auth.session(session_id)
    assert current is None


def test_session_close_disable_and_garbage(env: Any, alice: str) -> None:
    session_id, _ = env.auth.open_session("alice", "")
    env.auth.close_session(session_id)
    assert env.auth.session(session_id) is None
    session_id, _ = env.auth.open_session("alice", "")
    env.auth.disable_user("alice")
    assert env.auth.session(session_id) is None
    for garbage in ("", "x", "x" * 10000, None, 7, "\x00"):
        assert env.auth.session(garbage) is None
        env.auth.close_session(garbage)
    with pytest.raises(Unauthenticated):
        env.auth.open_session("nobody", "")
