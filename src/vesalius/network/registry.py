"""The registry of remote Application Entities: who may talk to us and where we send."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, delete, select
from sqlalchemy.engine import Engine

from vesalius.config import DIMSE_PERMISSIONS
from vesalius.core.errors import Conflict, InvalidInput, NotFound

metadata = MetaData()

remote_aes = Table(
    "remote_aes",
    metadata,
    Column("title", String(16), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("tls", Boolean, nullable=False, default=False),
    Column("permissions", String(64), nullable=False, default=""),
)


@dataclass(frozen=True)
class RemoteAE:
    title: str
    host: str
    port: int
    tls: bool
    permissions: frozenset[str]


def validate_ae_title(title: str) -> str:
    """AE titles: 1 to 16 characters of the default repertoire, no backslash (PS3.5 §6.2)."""
    stripped = title.strip()
    printable = stripped.isprintable() and stripped.isascii()
    if not stripped or len(stripped) > 16 or "\\" in stripped or not printable:
        raise InvalidInput("an AE title has 1 to 16 printable ASCII characters, no backslash")
    return stripped


def parse_permissions(text: str | Iterable[str]) -> frozenset[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    perms = frozenset(p.strip().lower() for p in items if p.strip())
    unknown = perms - set(DIMSE_PERMISSIONS)
    if unknown:
        raise InvalidInput(f"unknown permission(s): {', '.join(sorted(unknown))}; "
                           f"choose from {', '.join(DIMSE_PERMISSIONS)}")
    return perms


class AERegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def add(self, title: str, host: str, port: int, *, tls: bool = False,
            permissions: Iterable[str] = (), replace: bool = False) -> RemoteAE:
        title = validate_ae_title(title)
        if not host or len(host) > 255:
            raise InvalidInput("host is required")
        if not 0 < port < 65536:
            raise InvalidInput("port must be between 1 and 65535")
        perms = parse_permissions(permissions)
        with self.engine.begin() as conn:
            exists = conn.execute(select(remote_aes.c.title)
                                  .where(remote_aes.c.title == title)).first()
            if exists and not replace:
                raise Conflict(f"AE {title} is already registered")
            if exists:
                conn.execute(delete(remote_aes).where(remote_aes.c.title == title))
            conn.execute(remote_aes.insert().values(title=title, host=host, port=port, tls=tls,
                                                    permissions=",".join(sorted(perms))))
        return RemoteAE(title, host, port, tls, perms)

    def remove(self, title: str) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(delete(remote_aes).where(remote_aes.c.title == title.strip())
                                ).rowcount:
                raise NotFound(f"AE {title.strip()} is not registered")

    def get(self, title: str) -> RemoteAE | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(remote_aes).where(remote_aes.c.title == title.strip())
                               ).first()
        return None if row is None else _from_row(row)

    def list(self) -> list[RemoteAE]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(remote_aes).order_by(remote_aes.c.title)).all()
        return [_from_row(r) for r in rows]

    def permissions_for(self, title: str, address: str) -> frozenset[str] | None:
        """Registered permissions when ``title`` is known and calls from its host, else None.

        Checking the address stops a peer from borrowing another AE's title.
        """
        ae = self.get(title)
        if ae is None or not _same_host(ae.host, address):
            return None
        return ae.permissions


def _same_host(registered: str, address: str) -> bool:
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    try:
        candidates = {ipaddress.ip_address(registered)}
    except ValueError:
        try:
            candidates = {ipaddress.ip_address(info[4][0])
                          for info in socket.getaddrinfo(registered, None)}
        except OSError:
            return False
    if peer.version == 6 and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return peer in candidates


def _from_row(row: Any) -> RemoteAE:
    return RemoteAE(str(row.title), str(row.host), int(row.port), bool(row.tls),
                    frozenset(p for p in str(row.permissions).split(",") if p))
