"""Record tables: current resources, their full version history, and (in ``search.tables``)
the search index. They live in the same database as the image index.

Every version of every resource is kept in ``fhir_history`` (https://hl7.org/fhir/R4/http.html#history);
``fhir_resources`` holds the current version of each logical resource (or a tombstone) and the
surrogate key the search index rows point at.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: Surrogate keys: BIGINT on PostgreSQL, the rowid alias on SQLite.
Key = BigInteger().with_variant(Integer, "sqlite")

resources = Table(
    "fhir_resources",
    metadata,
    Column("pk", Key, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),  # JSON of the current version; NULL when deleted
    UniqueConstraint("resource_type", "id", name="uq_fhir_resources_type_id"),
    Index("ix_fhir_resources_type_updated", "resource_type", "last_updated"),
)

history = Table(
    "fhir_history",
    metadata,
    Column("pk", Key, primary_key=True, autoincrement=True),
    Column("resource_pk", Key, ForeignKey("fhir_resources.pk", ondelete="CASCADE"),
           nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
    Column("method", String(8), nullable=False),  # POST, PUT, PATCH, DELETE
    Column("content", Text, nullable=True),  # NULL for a delete
    UniqueConstraint("resource_type", "id", "version", name="uq_fhir_history_version"),
    Index("ix_fhir_history_updated", "last_updated"),
    Index("ix_fhir_history_type_updated", "resource_type", "last_updated"),
)
