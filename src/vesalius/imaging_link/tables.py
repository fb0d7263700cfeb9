"""The imaging link's own tables, in the same database as the image index and the record.

``imaging_link_pending`` is the durable queue of studies to rebuild: a row per study, its
``due_at`` pushed back by every archive event (a study arrives instance by instance, and is
rebuilt once it has been quiet), ``generation`` bumped by every event so a worker that
rebuilt an older state leaves the row for the next round, and ``claim_token`` /
``claimed_until`` so that of several workers (threads or processes) exactly one rebuilds a
study at a time; a claim that outlives its worker expires.

``imaging_link_problems`` keeps what the link could not do for a study (e.g. several
Patients carry its patient identifier), until a later rebuild of that study succeeds.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

pending = Table(
    "imaging_link_pending",
    metadata,
    Column("study_uid", String(64), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("generation", Integer, nullable=False, default=0),
    Column("claim_token", String(32), nullable=True),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
)
Index("ix_imaging_link_pending_due", pending.c.due_at)

problems = Table(
    "imaging_link_problems",
    metadata,
    Column("study_uid", String(64), primary_key=True),
    Column("severity", String(16), nullable=False),
    Column("code", String(32), nullable=False),
    Column("diagnostics", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
