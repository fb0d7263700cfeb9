"""The record service: FHIR R4 interactions with no protocol knowledge.

Reads use the reader engine; every write runs in a ``UnitOfWork`` on the writer engine (on
SQLite behind the shared writer lock), and record events are published after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Engine

from vesalius.core.errors import Gone, NotFound
from vesalius.database.write_lock import WriteLock
from vesalius.record.access import Visibility, patients_of, related_patients
from vesalius.record.access import condition as access_condition
from vesalius.record.bundles import BundleProcessor
from vesalius.record.chart import Chart, build_chart
from vesalius.record.definitions import Definitions, load
from vesalius.record.events import RecordEventBus
from vesalius.record.history import HistoryEntry, HistoryPage
from vesalius.record.schema import history, metadata, resources
from vesalius.record.search.engine import SearchEngine, SearchResult
from vesalius.record.search.indexer import SearchIndexer
from vesalius.record.unit_of_work import UnitOfWork, Version, utcnow
from vesalius.record.validation import Validator


@dataclass(frozen=True)
class RecordOptions:
    default_count: int = 20
    max_count: int = 1000
    referential_integrity: bool = True
    max_bundle_entries: int = 10000
    #: This server's FHIR base: absolute references to it are indexed as local ones.
    base_url: str | None = None


class RecordService:
    def __init__(self, reader: Engine, writer: Engine, *, options: RecordOptions | None = None,
                 events: RecordEventBus | None = None, defs: Definitions | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.reader = reader
        self.writer = writer
        self.options = options or RecordOptions()
        self.events = events or RecordEventBus()
        self.defs = defs or load()
        self.validator = Validator(self.defs)
        self.indexer = SearchIndexer(self.defs, base_url=self.options.base_url)
        self.engine = SearchEngine(self.defs, default_count=self.options.default_count,
                                   max_count=self.options.max_count,
                                   base_url=self.options.base_url)
        self._clock = clock
        self._write_lock = WriteLock(writer)
        metadata.create_all(writer)

    @contextmanager
    def unit(self) -> Iterator[UnitOfWork]:
        """One atomic write transaction; its events are published once it committed."""
        with self._write_lock(), self.writer.begin() as conn:
            work = UnitOfWork(conn, self.defs, self.validator, self.indexer, self.engine,
                              self.options.referential_integrity, self._clock)
            yield work
        for event in work.events:
            self.events.publish(event)

    @contextmanager
    def _reading(self) -> Iterator[UnitOfWork]:
        with self.reader.connect() as conn:
            yield UnitOfWork(conn, self.defs, self.validator, self.indexer, self.engine,
                             self.options.referential_integrity, self._clock)

    # -- instance interactions ---------------------------------------------------------------

    def read(self, resource_type: str, id: str) -> Version:
        with self._reading() as work:
            return work.read(resource_type, id)

    def vread(self, resource_type: str, id: str, version: str) -> Version:
        with self._reading() as work:
            work.require_type(resource_type)
            if not version.isdigit():
                raise_not_found(resource_type, id, version)
            row = work.conn.execute(select(history).where(
                history.c.resource_type == resource_type, history.c.id == id,
                history.c.version == int(version))).first()
        if row is None:
            raise_not_found(resource_type, id, version)
        if row.content is None:
            raise Gone(f"{resource_type}/{id} version {version} is a deletion")
        return Version(resource_type, id, row.version, row.last_updated, json.loads(row.content))

    def create(self, resource: Any, *, if_none_exist: str | None = None) -> Version:
        with self.unit() as work:
            return work.create(resource, if_none_exist=if_none_exist)

    def update(self, resource_type: str, id: str, resource: Any, *,
               if_match: str | None = None) -> Version:
        with self.unit() as work:
            return work.update(resource_type, id, resource, if_match=if_match)

    def conditional_update(self, resource_type: str, query: str | Sequence[tuple[str, str]],
                           resource: Any) -> Version:
        with self.unit() as work:
            return work.conditional_update(resource_type, query, resource)

    def patch(self, resource_type: str, id: str, operations: Any, *,
              if_match: str | None = None) -> Version:
        with self.unit() as work:
            return work.patch(resource_type, id, operations, if_match=if_match)

    def delete(self, resource_type: str, id: str, *, if_match: str | None = None) -> None:
        with self.unit() as work:
            work.delete(resource_type, id, if_match=if_match)

    def conditional_delete(self, resource_type: str, query: str | Sequence[tuple[str, str]], *,
                           multiple: bool = False) -> int:
        with self.unit() as work:
            return work.conditional_delete(resource_type, query, multiple=multiple)

    def process_bundle(self, bundle: Any, *, base: str, representation: bool = False
                       ) -> dict[str, Any]:
        """Batch or transaction (https://hl7.org/fhir/R4/http.html#transaction)."""
        return BundleProcessor(self.unit, base=base, max_entries=self.options.max_bundle_entries,
                               representation=representation).process(bundle)

    def reindex(self, *, batch: int = 500) -> int:
        """Rebuild the search index of every live resource from its stored JSON (after an
        upgrade changed what is indexed); returns how many. Runs in batches, each one
        transaction, so searches keep working meanwhile."""
        done, after = 0, 0
        while True:
            with self.unit() as work:
                rows = work.conn.execute(
                    select(resources.c.pk, resources.c.content)
                    .where(resources.c.pk > after, resources.c.deleted.is_(False))
                    .order_by(resources.c.pk).limit(batch)).all()
                for row in rows:
                    self.indexer.index(work.conn, row.pk, json.loads(row.content))
            if not rows:
                return done
            done += len(rows)
            after = rows[-1].pk

    def validate(self, resource: Any) -> list[dict[str, str]]:
        """``$validate`` (https://hl7.org/fhir/R4/resource-operation-validate.html)."""
        return self.validator.validate(resource)

    # -- search and history ------------------------------------------------------------------

    def search(self, resource_type: str | None, params: Sequence[tuple[str, str]], *,
               strict: bool = False, visibility: Visibility | None = None) -> SearchResult:
        """Search; ``visibility`` confines matches, totals and includes to what a caller may
        see (``vesalius.record.access``)."""
        with self._reading() as work:
            if resource_type is not None:
                work.require_type(resource_type)
            return self.engine.search(work.conn, resource_type, params, strict=strict,
                                      restrict=self._restrict(visibility))

    def _restrict(self, visibility: Visibility | None) -> ColumnElement[bool] | None:
        return None if visibility is None else access_condition(visibility, self.defs)

    def related_patients(self, *, practitioner: str | None, organization: str | None
                         ) -> frozenset[str]:
        """Patients a practitioner cares for, or an organization manages (``record.access``)."""
        with self.reader.connect() as conn:
            return related_patients(conn, practitioner=practitioner, organization=organization)

    def patients_of(self, resource: dict[str, Any]) -> frozenset[str]:
        """Ids of the Patients in whose compartment ``resource`` is."""
        return patients_of(resource, self.defs, self.indexer.extractor)

    def everything(self, patient_id: str, *, since: datetime | None = None,
                   types: Sequence[str] | None = None, count: int | None = None,
                   offset: int = 0, visibility: Visibility | None = None
                   ) -> tuple[list[dict[str, Any]], int]:
        """``Patient/$everything`` (https://hl7.org/fhir/R4/patient-operation-everything.html)."""
        with self._reading() as work:
            work.read("Patient", patient_id)
            for t in types or ():
                work.require_type(t)
            return self.engine.compartment(work.conn, patient_id, types=types, since=since,
                                           count=self._count(count), offset=offset,
                                           restrict=self._restrict(visibility))

    def chart(self, patient_id: str, *, dicomweb: str, limit: int = 5000,
              visibility: Visibility | None = None) -> Chart:
        """The patient's chart sections and imaging timeline from one compartment query."""
        with self._reading() as work:
            work.read("Patient", patient_id)
            found, total = self.engine.compartment(work.conn, patient_id, count=limit, offset=0,
                                                   restrict=self._restrict(visibility))
        return build_chart(patient_id, found, dicomweb=dicomweb, truncated=total > len(found))

    def history(self, resource_type: str | None = None, id: str | None = None, *,
                since: datetime | None = None, count: int | None = None,
                offset: int = 0) -> HistoryPage:
        """Instance, type or system history, newest first (https://hl7.org/fhir/R4/http.html#history)."""
        conditions = []
        if resource_type is not None:
            conditions.append(history.c.resource_type == resource_type)
        if id is not None:
            conditions.append(history.c.id == id)
        if since is not None:
            conditions.append(history.c.last_updated >= since)
        limit = self._count(count)
        with self._reading() as work:
            if resource_type is not None:
                work.require_type(resource_type)
            total = work.conn.execute(
                select(func.count()).select_from(history).where(*conditions)).scalar_one()
            if id is not None and total == 0:
                raise_not_found(resource_type or "", id, None)
            rows = work.conn.execute(
                select(history).where(*conditions)
                .order_by(history.c.last_updated.desc(), history.c.pk.desc())
                .limit(limit).offset(offset)).all()
        entries = [HistoryEntry(r.resource_type, r.id, r.version, r.method, r.last_updated,
                                None if r.content is None else json.loads(r.content))
                   for r in rows]
        return HistoryPage(entries, total, offset, limit)

    def _count(self, count: int | None) -> int:
        if count is None:
            return self.options.default_count
        return max(0, min(count, self.options.max_count))


def raise_not_found(resource_type: str, id: str, version: str | None) -> NoReturn:
    suffix = f" version {version}" if version is not None else ""
    raise NotFound(f"{resource_type}/{id}{suffix} is not known")
