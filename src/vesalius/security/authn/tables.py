"""The identity core's tables (prefix ``auth_``), in their own ``MetaData``.

What is stored, and how:

- passwords: argon2id hashes (``passwords``);
- random tokens (client secrets, authorization codes, refresh tokens, session ids): their
  SHA-256, never the token — they carry 256 bits of entropy, so a fast hash is enough and a
  stolen table yields nothing usable;
- TOTP secrets: in the clear in ``auth_users`` (the server must compute codes from them;
  RFC 6238 offers no one-way form). Encrypting the database at rest covers them;
- times: integer seconds since the epoch (UTC), which compare the same on every backend.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

auth_users = Table(
    "auth_users", metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("practitioner", String(64)),
    Column("patient", String(64)),
    Column("organization", String(64)),
    Column("disabled", Boolean, nullable=False, default=False),
    #: The confirmed TOTP secret (base32), and one waiting for its first code.
    Column("totp_secret", String(64)),
    Column("totp_pending", String(64)),
    #: Last RFC 6238 time step accepted: a code is accepted once.
    Column("totp_last_step", BigInteger, nullable=False, default=0),
    Column("created", BigInteger, nullable=False),
)

#: Failed sign-ins, keyed by the SHA-256 of the username as typed, so that unknown usernames
#: lock exactly like known ones (a lockout must not reveal which accounts exist).
auth_lockouts = Table(
    "auth_lockouts", metadata,
    Column("key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("locks", Integer, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
)

auth_clients = Table(
    "auth_clients", metadata,
    Column("client_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("public", Boolean, nullable=False),
    Column("redirect_uris", Text, nullable=False),  # JSON array
    Column("scopes", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("auth_method", String(32), nullable=False),
    Column("grant_types", Text, nullable=False),
    Column("secret_hash", String(64)),
    Column("jwks", Text),  # JSON Web Key Set (public keys) for private_key_jwt
    Column("created", BigInteger, nullable=False),
)

auth_codes = Table(
    "auth_codes", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("username", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("nonce", Text),
    Column("launch_patient", String(64)),
    Column("auth_time", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("used", Boolean, nullable=False, default=False),
    #: Set by a second redemption; the first one checks it after recording its tokens.
    Column("replayed", Boolean, nullable=False, default=False),
    #: The access token issued from the code (revoked if the code is replayed).
    Column("access_jti", String(64)),
    Column("access_expires", BigInteger),
)

auth_refresh_tokens = Table(
    "auth_refresh_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    #: Every token rotated from one grant shares a family; reuse revokes the family.
    Column("family", String(64), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("username", String(64)),
    Column("scopes", Text, nullable=False),
    Column("patient", String(64)),
    Column("expires", BigInteger, nullable=False),
    Column("rotated", Boolean, nullable=False, default=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("access_jti", String(64), nullable=False),
    Column("access_expires", BigInteger, nullable=False),
    Index("auth_refresh_tokens_family", "family"),
)

#: Access tokens revoked before their expiry (RFC 7009), kept until they would expire.
auth_revoked = Table(
    "auth_revoked", metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires", BigInteger, nullable=False),
)

auth_sessions = Table(
    "auth_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("address", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
)

#: ``jti`` of private_key_jwt client assertions already used (RFC 7523 §3 item 7).
auth_assertions = Table(
    "auth_assertions", metadata,
    Column("key", String(64), primary_key=True),
    Column("expires", BigInteger, nullable=False),
)
