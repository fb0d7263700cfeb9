"""Schema creation for the image index."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from vesalius.archive.index.schema import metadata


def create_schema(engine: Engine) -> None:
    """Create missing tables (idempotent)."""
    metadata.create_all(engine)
