"""Queue SQLite writers instead of letting them spin in SQLite's busy handler.

SQLite allows one writer at a time. Its busy handler retries with sleeps of up to
100 ms, which under concurrent ingest wastes most of the wall time. Threads of one
process queue on a mutex and processes sharing the database on an ``flock``, both of
which wake the next writer the moment the lock is released. PostgreSQL needs neither.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy.engine import Engine


class WriteLock:
    def __init__(self, engine: Engine) -> None:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._path = f"{database}.writelock" if database and database != ":memory:" else None
        self._enabled = engine.dialect.name == "sqlite"
        self._mutex = threading.Lock()

    @contextmanager
    def _held(self) -> Iterator[None]:
        with self._mutex:
            if self._path is None:
                yield
                return
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def __call__(self) -> Any:
        """A context manager holding the write lock (no-op for PostgreSQL)."""
        return self._held() if self._enabled else nullcontext()
