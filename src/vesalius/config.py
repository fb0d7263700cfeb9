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
        return f"http://{self.host}:{self.http_port}"

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
    return settings
