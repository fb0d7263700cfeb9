"""Typed settings from a TOML file, ``VESALIUS_*`` environment variables and CLI flags.

Precedence (lowest to highest): built-in defaults, the TOML file, the
environment, explicit overrides (command-line flags).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vesalius.core.errors import InvalidInput

DUPLICATE_POLICIES = ("reject", "replace")
HTTPS_MODES = ("off", "self-signed", "files")
CONSENT_DEFAULTS = ("opt-in", "opt-out")
#: What a remote AE may be allowed to do.
DIMSE_PERMISSIONS = ("store", "find", "move", "get")


@dataclass(frozen=True)
class Settings:
    """Everything an installation can be configured with."""

    data_dir: Path = Path("./data")
    #: SQLAlchemy URL; empty means the embedded SQLite file under ``data_dir``.
    database_url: str = ""
    host: str = "127.0.0.1"
    http_port: int = 8080
    #: HTTP worker processes; 0 means one per CPU core (at most 8).
    http_workers: int = 0
    #: DIMSE listener; 0 disables it.
    dicom_port: int = 11112
    ae_title: str = "VESALIUS"
    #: DICOM TLS listener (secure transport connection profile); 0 disables it.
    dicom_tls_port: int = 0
    tls_certificate: str = ""
    tls_private_key: str = ""
    #: CA bundle used to verify peers (clients of the TLS port, TLS destinations).
    tls_ca_certificates: str = ""
    tls_require_client_certificate: bool = False
    #: What a calling AE that is not in the registry may do (echo is always allowed).
    unknown_ae_permissions: tuple[str, ...] = ("store",)
    #: Largest PDU we receive (bytes); 0 means unlimited as PS3.8 allows.
    dicom_max_pdu: int = 262144
    dicom_max_associations: int = 64
    #: Seconds a DIMSE peer may stay silent mid-operation before the association is aborted.
    dicom_timeout: int = 60
    #: What to do when a known SOP Instance UID arrives with different bytes:
    #: ``reject`` (default) or ``replace`` (newest wins, old version retained).
    duplicate_policy: str = "reject"
    #: Extra attributes indexed for QIDO-RS matching, as keywords or ``ggggeeee``.
    extra_indexed_tags: tuple[str, ...] = ()
    #: Largest single instance accepted, in bytes.
    max_instance_bytes: int = 4 * 1024**3
    #: Largest STOW-RS request body accepted, in bytes.
    max_request_bytes: int = 16 * 1024**3
    #: Load the synthetic demo studies on first start.
    load_demo: bool = False
    #: Slices in the generated demo CT series.
    demo_ct_slices: int = 200
    #: Default and maximum number of QIDO-RS results per request.
    qido_default_limit: int = 1000
    qido_max_limit: int = 10000
    #: Base URL clients reach this server at (e.g. ``https://pacs.example.org``); it is the
    #: address of the DICOMweb Endpoint in the record. Empty: taken from each request, or
    #: ``http://host:http_port`` outside a request.
    public_base_url: str = ""
    #: Default and maximum page size of FHIR searches, histories and ``$everything``.
    fhir_default_count: int = 20
    fhir_max_count: int = 1000
    #: Refuse writes whose relative references name resources that do not exist.
    fhir_referential_integrity: bool = True
    #: Largest FHIR request body (a resource or a Bundle), in bytes.
    fhir_max_request_bytes: int = 64 * 1024**2
    #: Most entries in one batch or transaction Bundle.
    fhir_max_bundle_entries: int = 10000
    #: Milliseconds a study must stay quiet before its ImagingStudy is (re)built, so a study
    #: arriving slice by slice is written once, not once per instance.
    imaging_link_quiet_ms: int = 1000
    #: File holding the audit chain's HMAC key (never stored in the database); empty means
    #: ``<data_dir>/keys/audit.key``, generated with mode 0600 when missing.
    audit_key_file: str = ""
    #: A signed audit checkpoint is written outside the database every this many records.
    audit_checkpoint_every: int = 1000
    # --- sign-in (built-in OpenID Connect provider at /auth) ---
    #: Issuer URL of the built-in provider; empty means ``<base_url>/auth``.
    auth_issuer: str = ""
    #: Lifetime of access tokens and of refresh tokens, in seconds.
    access_token_ttl: int = 900
    refresh_token_ttl: int = 8 * 3600
    #: Web sessions end after this many idle seconds (and after ``session_max_age`` at most).
    session_idle_timeout: int = 900
    session_max_age: int = 12 * 3600
    #: Password policy for local accounts.
    password_min_length: int = 12
    #: Failed sign-ins before an account is locked; each further lock doubles the wait.
    login_max_failures: int = 5
    login_lockout_seconds: int = 60
    #: Roles that must use a second factor (TOTP).
    mfa_required_roles: tuple[str, ...] = ("administrator",)
    #: Requests per minute per client address on the sign-in and token endpoints.
    auth_rate_limit_per_minute: int = 30
    #: An external OpenID Connect provider whose tokens are accepted too: its issuer, its
    #: JWKS (a URL or a file), the audience our tokens must name, the claim holding roles and
    #: how its values map to our roles (``value=role`` entries).
    external_issuer: str = ""
    external_jwks: str = ""
    external_audience: str = ""
    external_role_claim: str = "roles"
    external_role_map: tuple[str, ...] = ()
    # --- access control ---
    #: TOML file overriding the default role permissions (see docs/security.md).
    policy_file: str = ""
    #: Disclosure to third parties without a Consent resource: ``opt-in`` (refuse unless a
    #: Consent permits) or ``opt-out`` (allow unless a Consent denies).
    consent_default: str = "opt-in"
    #: Minutes an emergency (break-the-glass) access grant lasts.
    break_glass_minutes: int = 60
    # --- encryption ---
    #: Serve HTTPS: ``off``, ``self-signed`` (a certificate generated under data_dir/keys)
    #: or ``files`` (``http_tls_certificate`` and ``http_tls_private_key``).
    https: str = "off"
    http_tls_certificate: str = ""
    http_tls_private_key: str = ""
    #: ``Strict-Transport-Security`` max-age sent over HTTPS, in seconds.
    hsts_max_age: int = 31536000
    #: Envelope-encrypt every stored blob (AES-256-GCM, a data key per object).
    encrypt_at_rest: bool = True
    #: File holding the key-encryption key; empty means ``<data_dir>/keys/kek.key``.
    kek_file: str = ""
    # --- audit forwarding ---
    #: Forward audit messages to a syslog collector over TLS (RFC 5425), as ``host:port``.
    syslog_target: str = ""
    syslog_ca_certificates: str = ""
    syslog_client_certificate: str = ""
    syslog_client_key: str = ""
    log_level: str = field(default="info")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'index.sqlite3').resolve()}"

    @property
    def base_url(self) -> str:
        """Where clients reach this server, without a trailing slash."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        scheme = "http" if self.https == "off" else "https"
        return f"{scheme}://{self.host}:{self.http_port}"

    @property
    def issuer(self) -> str:
        """The built-in OpenID Connect provider's issuer URL."""
        return self.auth_issuer.rstrip("/") if self.auth_issuer else f"{self.base_url}/auth"

    @property
    def keys_dir(self) -> Path:
        """Where generated keys live (mode 0700); configured key files may live elsewhere."""
        return self.data_dir / "keys"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def resolved_http_workers(self) -> int:
        if self.http_workers > 0:
            return self.http_workers
        return max(1, min(os.cpu_count() or 1, 8))

    def as_environment(self) -> dict[str, str]:
        """These settings as ``VESALIUS_*`` variables (to hand to worker processes)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                text = ",".join(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            out[f"VESALIUS_{f.name.upper()}"] = text
        return out


def _coerce(name: str, raw: Any, target: Any) -> Any:
    """Convert a TOML or environment value to the type of the default."""
    try:
        if isinstance(target, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(target, int):
            return int(raw)
        if isinstance(target, Path):
            return Path(str(raw)).expanduser()
        if isinstance(target, tuple):
            if isinstance(raw, str):
                return tuple(part.strip() for part in raw.split(",") if part.strip())
            return tuple(str(part) for part in raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"setting {name!r} has an invalid value {raw!r}") from exc


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from defaults, a TOML file, the environment and overrides.

    ``config_file`` defaults to ``$VESALIUS_CONFIG`` when set. Unknown keys in
    the file are an error, so typos do not silently fall back to defaults.
    """
    env = os.environ if environ is None else environ
    defaults = Settings()
    known = {f.name: getattr(defaults, f.name) for f in fields(Settings)}
    values: dict[str, Any] = {}

    path = config_file or (Path(env["VESALIUS_CONFIG"]) if env.get("VESALIUS_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InvalidInput(f"configuration file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"configuration file {path} is not valid TOML: {exc}") from exc
        section = data.get("vesalius", data)
        for key, raw in section.items():
            name = key.replace("-", "_")
            if name not in known:
                raise InvalidInput(f"unknown setting {key!r} in {path}")
            values[name] = _coerce(name, raw, known[name])

    for name, default in known.items():
        env_value = env.get(f"VESALIUS_{name.upper()}")
        if env_value is not None:
            values[name] = _coerce(name, env_value, default)

    for name, raw in overrides.items():
        if raw is None:
            continue
        if name not in known:
            raise InvalidInput(f"unknown setting {name!r}")
        values[name] = _coerce(name, raw, known[name])

    settings = replace(defaults, **values)
    unknown = set(settings.unknown_ae_permissions) - set(DIMSE_PERMISSIONS)
    if unknown:
        raise InvalidInput(f"unknown_ae_permissions: unknown permission(s) {sorted(unknown)}")
    if settings.duplicate_policy not in DUPLICATE_POLICIES:
        raise InvalidInput(
            f"duplicate_policy must be one of {', '.join(DUPLICATE_POLICIES)}"
        )
    if settings.https not in HTTPS_MODES:
        raise InvalidInput(f"https must be one of {', '.join(HTTPS_MODES)}")
    if settings.consent_default not in CONSENT_DEFAULTS:
        raise InvalidInput(f"consent_default must be one of {', '.join(CONSENT_DEFAULTS)}")
    return settings
