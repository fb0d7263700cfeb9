"""Keeps the search index rows of a resource in step with its current version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert

from vesalius.record.definitions import Definitions
from vesalius.record.search.extract import Extractor
from vesalius.record.search.tables import TABLES


class SearchIndexer:
    """Writes index rows in the caller's transaction, so index and resource change together."""

    def __init__(self, defs: Definitions, *, base_url: str | None = None) -> None:
        self.extractor = Extractor(defs, base_url=base_url)

    def index(self, conn: Connection, resource_pk: int, resource: dict[str, Any], *,
              fresh: bool = False) -> None:
        """Replace all index rows of resource_pk with those extracted from resource.

        ``fresh``: the resource row was just inserted, so it has no rows to remove."""
        if not fresh:
            self.unindex(conn, resource_pk)
        self.write(conn, self.rows(resource_pk, resource))

    def rows(self, resource_pk: int, resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Index rows of a resource per index table, ready to insert (see ``write``)."""
        return {param_type: [{"resource_pk": resource_pk, **row} for row in rows]
                for param_type, rows in self.extractor.rows(resource).items()}

    @staticmethod
    def write(conn: Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Insert rows from ``rows`` (of one or many resources): one statement per table."""
        for param_type, table_rows in rows.items():
            if table_rows:
                conn.execute(insert(TABLES[param_type]), table_rows)

    def unindex(self, conn: Connection, resource_pk: int) -> None:
        for table in TABLES.values():
            conn.execute(delete(table).where(table.c.resource_pk == resource_pk))
