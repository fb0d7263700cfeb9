"""The durable pending queue: debounced marks and claims that never overlap (both backends)."""

from __future__ import annotations

import datetime as dt
import threading

from vesalius.config import Settings
from vesalius.database.engine import make_engines
from vesalius.imaging_link.pending import PendingStudies
from vesalius.imaging_link.tables import metadata

NOW = dt.timedelta(0)


def _queue(settings: Settings) -> PendingStudies:
    _, writer = make_engines(settings)
    metadata.drop_all(writer)
    return PendingStudies(writer)


def test_a_study_is_due_only_after_its_quiet_period(settings: Settings) -> None:
    queue = _queue(settings)
    queue.mark("1.2.3", quiet=dt.timedelta(hours=1))
    queue.mark("1.2.3", quiet=dt.timedelta(hours=1))
    assert queue.count() == 1
    assert queue.claim() == []
    (claim,) = queue.claim(due_only=False)
    assert claim.study_uid == "1.2.3"
    assert queue.claim(due_only=False) == []  # held by the first claim
    queue.finish(claim)
    assert queue.count() == 0


def test_an_event_during_a_rebuild_keeps_the_study_queued(settings: Settings) -> None:
    queue = _queue(settings)
    queue.mark("1.2.4", quiet=NOW)
    (claim,) = queue.claim()
    queue.mark("1.2.4", quiet=NOW)
    queue.finish(claim)
    (again,) = queue.claim()
    assert again.study_uid == "1.2.4"
    assert again.generation == claim.generation + 1
    queue.finish(again)
    assert queue.count() == 0


def test_released_claims_wait_for_the_retry(settings: Settings) -> None:
    queue = _queue(settings)
    queue.mark("1.2.5", quiet=NOW)
    (claim,) = queue.claim()
    queue.release(claim, retry_in=dt.timedelta(hours=1))
    assert queue.claim() == []
    next_due = queue.next_due()
    assert next_due is not None and next_due > dt.datetime.now(dt.UTC)


def test_concurrent_workers_claim_disjoint_studies(settings: Settings) -> None:
    queue = _queue(settings)
    uids = [f"1.2.9.{n}" for n in range(60)]
    for uid in uids:
        queue.mark(uid, quiet=NOW)
    workers = [PendingStudies(make_engines(settings)[1]) for _ in range(4)]
    taken: list[list[str]] = [[] for _ in workers]

    def work(index: int) -> None:
        while claims := workers[index].claim(limit=3):
            taken[index].extend(c.study_uid for c in claims)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [uid for part in taken for uid in part]
    assert sorted(everything) == sorted(uids)
