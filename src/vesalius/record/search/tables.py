"""Search index tables (https://hl7.org/fhir/R4/search.html), one per kind of indexed value.

Every row names the resource it was extracted from (``resource_pk``, deleted with it), the
resource type and the search parameter code (``name``), so that each criterion is an index
lookup on ``(resource_type, name, value…)``. Components of composite parameters are stored in
the same tables under ``<composite>$<position>``, rows of one element instance sharing
``instance``, so components are matched within the same element
(https://hl7.org/fhir/R4/search.html#combining).

``(resource_pk, name)`` serves re-indexing, sorting and includes (the values of one resource).

Dates and number/quantity values are stored as half-open ranges ``[low, high)``: dates in naive
UTC, numbers as doubles, so that prefix comparisons are range comparisons.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text

from vesalius.record.schema import Key, metadata

#: Lets PostgreSQL answer starts-with (LIKE 'abc%') from the index whatever the collation.
_PATTERN_OPS = {"value": "text_pattern_ops"}


def _common() -> list[Column[object]]:
    return [
        Column("resource_pk", Key, ForeignKey("fhir_resources.pk", ondelete="CASCADE"),
               nullable=False),
        Column("resource_type", String(64), nullable=False),
        Column("name", String(100), nullable=False),
        Column("instance", Integer, nullable=True),  # element instance of a composite component
    ]


string_index = Table(
    "fhir_idx_string", metadata, *_common(),
    Index("ix_fhir_idx_string_resource", "resource_pk", "name"),
    Column("value", String(255), nullable=False),  # normalized: accents removed, case folded
    Column("exact", Text, nullable=False),
    Index("ix_fhir_idx_string", "resource_type", "name", "value", postgresql_ops=_PATTERN_OPS),
)

token_index = Table(
    "fhir_idx_token", metadata, *_common(),
    Index("ix_fhir_idx_token_resource", "resource_pk", "name"),
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    Column("text", String(255), nullable=True),  # normalized display/text, for :text
    Column("type_system", String(255), nullable=True),  # Identifier.type, for :of-type
    Column("type_code", String(255), nullable=True),
    Index("ix_fhir_idx_token_code", "resource_type", "name", "code", "system"),
    Index("ix_fhir_idx_token_system", "resource_type", "name", "system"),
)

date_index = Table(
    "fhir_idx_date", metadata, *_common(),
    Index("ix_fhir_idx_date_resource", "resource_pk", "name"),
    Column("low", DateTime, nullable=False),
    Column("high", DateTime, nullable=False),
    Index("ix_fhir_idx_date_low", "resource_type", "name", "low"),
    Index("ix_fhir_idx_date_high", "resource_type", "name", "high"),
)

number_index = Table(
    "fhir_idx_number", metadata, *_common(),
    Index("ix_fhir_idx_number_resource", "resource_pk", "name"),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Index("ix_fhir_idx_number", "resource_type", "name", "low", "high"),
)

quantity_index = Table(
    "fhir_idx_quantity", metadata, *_common(),
    Index("ix_fhir_idx_quantity_resource", "resource_pk", "name"),
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    Column("unit", String(255), nullable=True),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Index("ix_fhir_idx_quantity_code", "resource_type", "name", "code", "low"),
    Index("ix_fhir_idx_quantity_low", "resource_type", "name", "low"),
)

reference_index = Table(
    "fhir_idx_reference", metadata, *_common(),
    Index("ix_fhir_idx_reference_resource", "resource_pk", "name"),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", String(512), nullable=True),  # absolute or canonical reference as written
    Column("identifier_system", String(255), nullable=True),  # Reference.identifier
    Column("identifier_value", String(255), nullable=True),
    Index("ix_fhir_idx_reference", "resource_type", "name", "target_type", "target_id"),
    Index("ix_fhir_idx_reference_target", "target_type", "target_id", "name"),
    Index("ix_fhir_idx_reference_url", "resource_type", "name", "url"),
)

uri_index = Table(
    "fhir_idx_uri", metadata, *_common(),
    Index("ix_fhir_idx_uri_resource", "resource_pk", "name"),
    Column("value", String(512), nullable=False),
    Index("ix_fhir_idx_uri", "resource_type", "name", "value", postgresql_ops=_PATTERN_OPS),
)

#: Index table of each search parameter type (composite components use their own type's).
TABLES: dict[str, Table] = {
    "string": string_index, "token": token_index, "date": date_index, "number": number_index,
    "quantity": quantity_index, "reference": reference_index, "uri": uri_index,
}
