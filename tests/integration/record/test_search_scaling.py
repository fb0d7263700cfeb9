"""Search latency with 1k vs 20k indexed resources (printed, not asserted: each criterion is an
index lookup, so the time should stay flat rather than grow with the number of resources)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from sqlalchemy import insert

from integration.record.search_store import Store
from vesalius.config import Settings
from vesalius.record.schema import resources
from vesalius.record.search.extract import Extractor
from vesalius.record.search.tables import TABLES

QUERIES = [
    [("code", "urn:codes|c7")],
    [("identifier", "urn:ids|v123")],
    [("subject", "Patient/p42")],
    [("created", "ge2020-06-01"), ("created", "lt2020-06-02")],
    [("code", "c3"), ("_sort", "-created"), ("_count", "10")],
]


def _add_basics(store: Store, backend: str, start: int, stop: int) -> None:
    """Basic resources, their index rows written in bulk (the rows SearchIndexer writes)."""
    extractor = Extractor(store.defs)
    with store.engine.begin() as conn:
        items = [{"resourceType": "Basic", "id": f"b{i}",
                  "code": {"coding": [{"system": "urn:codes", "code": f"c{i % 50}"}]},
                  "identifier": [{"system": "urn:ids", "value": f"v{i}"}],
                  "subject": {"reference": f"Patient/p{i % 500}"},
                  "created": f"2020-{1 + i % 12:02d}-{1 + i % 28:02d}"}
                 for i in range(start, stop)]
        pks = conn.execute(insert(resources).returning(resources.c.pk), [
            {"resource_type": "Basic", "id": r["id"], "version": 1, "deleted": False,
             "last_updated": datetime(2020, 1, 1, tzinfo=UTC), "content": json.dumps(r)}
            for r in items]).scalars().all()
        rows: dict[str, list[dict[str, object]]] = {}
        for pk, resource in zip(pks, items, strict=True):
            for param_type, found in extractor.rows(resource).items():
                rows.setdefault(param_type, []).extend({"resource_pk": pk, **r} for r in found)
        for param_type, found in rows.items():
            conn.execute(insert(TABLES[param_type]), found)
    if backend == "postgres":  # what autovacuum does after a bulk load: plans need statistics
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


def _timings(store: Store) -> list[float]:
    timings = []
    for query in QUERIES:
        store.search("Basic", query)  # warm
        began = time.perf_counter()
        for _ in range(5):
            store.search("Basic", query)
        timings.append((time.perf_counter() - began) / 5 * 1000)
    return timings


def test_search_time_with_1k_and_20k_resources(settings: Settings, backend: str) -> None:
    store = Store(settings)
    _add_basics(store, backend, 0, 1000)
    small = _timings(store)
    assert store.search("Basic", [("identifier", "urn:ids|v123")]).total == 1
    _add_basics(store, backend, 1000, 20000)
    large = _timings(store)
    assert store.search("Basic", [("identifier", "urn:ids|v123")]).total == 1
    assert store.search("Basic", [("code", "urn:codes|c7")]).total == 400
    for query, before, after in zip(QUERIES, small, large, strict=True):
        print(f"{backend} {query}: 1k {before:.1f} ms, 20k {after:.1f} ms")
