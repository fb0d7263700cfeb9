"""Engine construction shared by the image index and the record: SQLite (WAL) embedded,
PostgreSQL at scale."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from vesalius.config import Settings


def make_engine(url: str, *, writer: bool = False, echo: bool = False) -> Engine:
    """Create an engine with the settings each backend needs.

    Statement parameters are hidden from errors and logs: they carry patient data.

    SQLite: WAL journal, ``synchronous=NORMAL`` (durable at checkpoints, safe
    with WAL), foreign keys on, case-sensitive ``LIKE`` (DICOM matching is
    case-sensitive except for person names, which use normalized columns), and
    for the ``writer`` engine ``BEGIN IMMEDIATE``, so concurrent writers queue
    instead of failing on lock upgrades while readers never wait on writers.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 60},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA case_sensitive_like=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    return create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True,
                         hide_parameters=True)


def make_engines(settings: Settings) -> tuple[Engine, Engine]:
    """(reader, writer) engines; on PostgreSQL they are the same pool."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    reader = make_engine(url)
    writer = make_engine(url, writer=True) if url.startswith("sqlite") else reader
    return reader, writer
