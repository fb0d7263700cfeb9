"""The archive index: patient / study / series / instance tables (SQLAlchemy Core).

Typed columns hold every attribute QIDO-RS and C-FIND match on, so matching
is index-driven; ``attrs`` columns hold the DICOM JSON of each entity's
attributes for ``includefield`` and precomputed metadata (never a file read).
The same schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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

patients = Table(
    "patients",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("issuer", String(64), nullable=False),
    Column("patient_name", String(324), nullable=False, default=""),
    Column("patient_name_norm", String(324), nullable=False, default=""),
    Column("patient_name_fuzzy", String(330), nullable=False, default=""),
    Column("birth_date", String(16), nullable=False, default=""),
    Column("sex", String(16), nullable=False, default=""),
    Column("attrs", Text, nullable=False, default="{}"),
    UniqueConstraint("patient_id", "issuer", name="uq_patient_identity"),
)
Index("ix_patients_name", patients.c.patient_name_norm)

studies = Table(
    "studies",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("patient_pk", Integer, ForeignKey("patients.pk"), nullable=False),
    Column("study_uid", String(64), nullable=False, unique=True),
    Column("study_date", String(16), nullable=False, default=""),
    Column("study_time", String(32), nullable=False, default=""),
    Column("accession_number", String(64), nullable=False, default=""),
    Column("referring_physician_name", String(324), nullable=False, default=""),
    Column("referring_physician_name_norm", String(324), nullable=False, default=""),
    Column("referring_physician_name_fuzzy", String(330), nullable=False, default=""),
    Column("study_id", String(32), nullable=False, default=""),
    Column("study_description", String(256), nullable=False, default=""),
    Column("modalities", String(256), nullable=False, default=""),
    Column("sop_classes", Text, nullable=False, default=""),
    Column("num_series", Integer, nullable=False, default=0),
    Column("num_instances", Integer, nullable=False, default=0),
    Column("attrs", Text, nullable=False, default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_studies_patient", studies.c.patient_pk)
Index("ix_studies_date", studies.c.study_date)
Index("ix_studies_accession", studies.c.accession_number)
Index("ix_studies_updated", studies.c.updated_at)

series = Table(
    "series",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("study_pk", Integer, ForeignKey("studies.pk"), nullable=False),
    Column("series_uid", String(64), nullable=False, unique=True),
    Column("modality", String(16), nullable=False, default=""),
    Column("series_number", Integer, nullable=True),
    Column("series_description", String(256), nullable=False, default=""),
    Column("pps_start_date", String(16), nullable=False, default=""),
    Column("pps_start_time", String(32), nullable=False, default=""),
    Column("body_part", String(64), nullable=False, default=""),
    Column("num_instances", Integer, nullable=False, default=0),
    Column("attrs", Text, nullable=False, default="{}"),
)
Index("ix_series_study", series.c.study_pk)
Index("ix_series_modality", series.c.modality)

instances = Table(
    "instances",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("series_pk", Integer, ForeignKey("series.pk"), nullable=False),
    Column("sop_uid", String(64), nullable=False, unique=True),
    Column("sop_class_uid", String(64), nullable=False),
    Column("instance_number", Integer, nullable=True),
    Column("transfer_syntax_uid", String(64), nullable=False),
    Column("rows", Integer, nullable=True),
    Column("columns", Integer, nullable=True),
    Column("bits_allocated", Integer, nullable=True),
    Column("number_of_frames", Integer, nullable=True),
    Column("blob_key", String(128), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    #: Pre-serialized DICOM JSON (PS3.18 §F) with BulkDataURI templates.
    Column("metadata_json", Text, nullable=False),
    #: Frame byte ranges inside the blob (JSON), when they could be determined.
    Column("pixel_layout", Text, nullable=True),
    Column("stored_at", DateTime(timezone=True), nullable=False),
)
Index("ix_instances_series", instances.c.series_pk, instances.c.instance_number)
Index("ix_instances_blob", instances.c.blob_key)
Index("ix_instances_sop_class", instances.c.sop_class_uid)

#: Extra indexed attributes configured by the installation (level, owner, tag, value).
extra_attributes = Table(
    "extra_attributes",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("level", String(8), nullable=False),
    Column("owner_pk", Integer, nullable=False),
    Column("tag", String(8), nullable=False),
    Column("value", String(256), nullable=False),
)
Index("ix_extra_lookup", extra_attributes.c.tag, extra_attributes.c.value)
Index("ix_extra_owner", extra_attributes.c.level, extra_attributes.c.owner_pk)

#: Older versions kept when the duplicate policy is ``replace``.
replaced_instances = Table(
    "replaced_instances",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("sop_uid", String(64), nullable=False),
    Column("blob_key", String(128), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("replaced_at", DateTime(timezone=True), nullable=False),
)
Index("ix_replaced_sop", replaced_instances.c.sop_uid)
Index("ix_replaced_blob", replaced_instances.c.blob_key)

#: Record of changes to the archive (deletions, replacements), newest last.
archive_log = Table(
    "archive_log",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(32), nullable=False),
    Column("level", String(8), nullable=False),
    Column("uid", String(64), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    # retrieval asks whether a study was re-filed by a merge (reader._corrected_patient)
    Index("ix_archive_log_uid", "uid", "action"),
)
