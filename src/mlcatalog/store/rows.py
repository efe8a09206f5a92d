"""Mapped tables: the relational store is the catalog's source of truth."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only aliases the rowid (and so autoincrements) for a column typed exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Created:
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class Updated(Created):
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class ProjectRow(Created, Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class ModelRow(Updated, Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200))
    task: Mapped[str | None] = mapped_column(String(100))
    # The last version number handed out: incremented under the row lock, so numbers have no gaps.
    version_count: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Promoting a version to PRODUCTION archives the one there, unless this is set.
    allows_several_in_production: Mapped[bool] = mapped_column(default=False)

    project: Mapped[ProjectRow] = relationship(lazy="raise")


class ModelTagRow(Base):
    __tablename__ = "model_tags"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))


class ModelVersionRow(Updated, Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        UniqueConstraint("model_id", "semver"),
        Index("ix_model_versions_model_id_stage", "model_id", "stage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    semver: Mapped[str | None] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(20), default="NONE")
    description: Mapped[str] = mapped_column(Text, default="")
    artifact_uri: Mapped[str | None] = mapped_column(String(2000))
    artifact_format: Mapped[str | None] = mapped_column(String(50))
    artifact_size: Mapped[int | None] = mapped_column(BigInteger)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    framework: Mapped[str | None] = mapped_column(String(100))
    framework_version: Mapped[str | None] = mapped_column(String(100))
    algorithm: Mapped[str | None] = mapped_column(String(200))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    code_repository: Mapped[str | None] = mapped_column(String(2000))
    code_commit: Mapped[str | None] = mapped_column(String(64))
    code_path: Mapped[str | None] = mapped_column(String(1000))
    python_version: Mapped[str | None] = mapped_column(String(50))
    packages: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    container_image: Mapped[str | None] = mapped_column(String(1000))
    source_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))

    model: Mapped[ModelRow] = relationship(lazy="raise")


class ModelVersionTagRow(Base):
    __tablename__ = "model_version_tags"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))


class AliasRow(Base):
    __tablename__ = "aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_version_id_name", "version_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(BigInteger)
    # What the metric was measured on: a split label ("holdout") and/or a dataset version.
    dataset: Mapped[str | None] = mapped_column(String(300))
    dataset_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class DatasetRow(Updated, Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(2000))
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DatasetTagRow(Base):
    __tablename__ = "dataset_tags"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))


class DatasetVersionRow(Created, Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    uri: Mapped[str] = mapped_column(String(2000))
    digest: Mapped[str | None] = mapped_column(String(200))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    schema: Mapped[dict[str, Any] | None] = mapped_column(Json)
    description: Mapped[str] = mapped_column(Text, default="")


class ExperimentRow(Updated, Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200))


class RunRow(Updated, Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="RUNNING")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    params: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    hardware: Mapped[str | None] = mapped_column(String(200))
    accelerator: Mapped[str | None] = mapped_column(String(200))
    pipeline_name: Mapped[str | None] = mapped_column(String(200))
    pipeline_run_id: Mapped[str | None] = mapped_column(String(200))
    pipeline_parameters: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    code_version: Mapped[str | None] = mapped_column(String(200))


class RunMetricRow(Base):
    __tablename__ = "run_metrics"
    __table_args__ = (Index("ix_run_metrics_run_id_name", "run_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LineageEdgeRow(Created, Base):
    """A typed edge, always stored upstream (source) to downstream (target)."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint("source_type", "source_id", "target_type", "target_id", "kind"),
        Index("ix_lineage_edges_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    source_type: Mapped[str] = mapped_column(String(30))
    source_id: Mapped[int] = mapped_column(Integer)
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[int] = mapped_column(Integer)


class DeploymentRow(Updated, Base):
    """Where a version runs: an endpoint in an environment, with its share of the traffic."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("version_id", "environment", "endpoint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    # The version's model, kept so that a model's deployments are one indexed read.
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    endpoint: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20))
    traffic_share: Mapped[float] = mapped_column(Float)


class DocumentRow(Updated, Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # The current sections and Markdown; document_revisions holds every revision, this one too.
    content: Mapped[dict[str, str | None]] = mapped_column(Json)


class DocumentRevisionRow(Created, Base):
    __tablename__ = "document_revisions"
    __table_args__ = (UniqueConstraint("document_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, str | None]] = mapped_column(Json)


class CommentRow(Created, Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)


class ProjectSettingsRow(Base):
    """A project's lifecycle settings; a project without a row has the defaults (no approvals)."""

    __tablename__ = "project_settings"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    # The stages a version may enter only through an approved request.
    require_approval: Mapped[list[str]] = mapped_column(Json, default=list)
    # The requester of a move may not approve it.
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class QualityGateRow(Created, Base):
    """A rule that must hold before a version of the project's models enters ``stage``."""

    __tablename__ = "quality_gates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(30))
    # Checked per kind by catalog/gates.py.
    parameters: Mapped[dict[str, Any]] = mapped_column(Json)


class StageTransitionRequestRow(Created, Base):
    """A request to move a version to a stage, and its decision; ``created_by`` requested it."""

    __tablename__ = "stage_transition_requests"
    __table_args__ = (
        # One pending request per version: a second would race the first to the same move.
        Index(
            "uq_stage_transition_requests_pending_version",
            "version_id",
            unique=True,
            sqlite_where=text("status = 'PENDING'"),
            postgresql_where=text("status = 'PENDING'"),
        ),
        Index("ix_stage_transition_requests_model_id_status", "model_id", "status"),
        Index("ix_stage_transition_requests_project_id_status", "project_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The model's project and the version's model, kept so that lists filter without joins.
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    from_stage: Mapped[str] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="PENDING")
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_comment: Mapped[str | None] = mapped_column(Text)


class JournalRow(Base):
    """One change. Entries outlive what they describe: no foreign keys. Entries are hash-chained
    (store/audit.py): ``hash`` covers the entry and ``prev_hash``, the hash of the one before.
    The origin columns (token_name … request_id) are null in entries written before them."""

    __tablename__ = "journal"
    __table_args__ = (
        # One successor per entry: were appends ever not serialised, a fork would fail to commit.
        UniqueConstraint("prev_hash"),
        # An entity's history, newest first, without reading the rest of the journal.
        Index("ix_journal_entity", "entity_type", "entity_id", "seq"),
        Index("ix_journal_model", "model_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # The model a version's stage, alias or deployment entry is about (ix_journal_model): a
    # model's lifecycle history without its versions' ids. Hashed (v3); null before 0011.
    model_id: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    token_name: Mapped[str | None] = mapped_column(String(200))
    auth_method: Mapped[str | None] = mapped_column(String(200))
    client_address: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class JournalHeadRow(Base):
    """The chain's head (one row): the newest entry's seq and hash, moved with every append.

    Appends link from it, not from whatever entry is last now: entries deleted from the end then
    leave the next append pointing at a hash no entry has, and verify compares it with the
    journal's last entry."""

    __tablename__ = "journal_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ApiTokenRow(Created, Base):
    """A token for a pipeline or service account. Only the SHA-256 of its secret is kept; the
    public id (in the token itself) finds the row with one indexed lookup."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        # A name names one live token; a revoked token's name may be used again.
        Index(
            "uq_api_tokens_live_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    project: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(50))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class SessionRow(Base):
    """A browser session after a login: who logged in, until when. Only the SHA-256 of the
    cookie's secret is kept; the public id (in the cookie) finds the row."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    groups: Mapped[list[str]] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Absolute: the session ends then, however busy it is; expired rows are swept at logins.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class WebhookRow(Updated, Base):
    """A project's hook: where its events go and how far they went. ``secret`` is kept as given,
    since signing needs it (docs/architecture.md, "Webhooks"); it is never read back out."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    actions: Mapped[list[str]] = mapped_column(Json)
    stages: Mapped[list[str]] = mapped_column(Json, default=list)
    model_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    include_changes: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The journal entry delivered last (or skipped as not matching): the hook's cursor.
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Failed attempts in a row at the oldest undelivered entry; the next try waits till then.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The worker that holds the hook, until when: one delivers a hook at a time.
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebhookDeliveryRow(Base):
    """One attempt to deliver one journal entry (``seq``; null for a ping) to a hook."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(100))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SearchCheckpointRow(Base):
    """How far a search index has read the journal, and which indexer holds the lease on it."""

    __tablename__ = "search_checkpoints"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SearchDocumentRow(Base):
    """The embedded search backend's copy of one search document (written by the indexer)."""

    __tablename__ = "search_documents"
    __table_args__ = (
        Index("ix_search_documents_entity", "entity_type", "entity_id"),
        # Every column a search filters or sorts on, by doc_key: counts and joins read this
        # narrow index instead of rows that carry the whole document (body, tokens).
        Index(
            "ix_search_documents_filters",
            "doc_key",
            "deleted",
            "archived",
            "entity_type",
            "entity_id",
            "project_id",
            "updated_at",
            "created_at",
            "name",
        ),
        Index("ix_search_documents_generation", "generation"),
    )

    doc_key: Mapped[str] = mapped_column(String(60), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[int | None] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(default=False)
    archived: Mapped[bool] = mapped_column(default=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # "word word …": the lowercase alphanumeric tokens of every searchable text, indexed for full
    # text by objects the ORM does not map (see FULL_TEXT): so both databases tokenize alike.
    tokens: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # The search_generation.generation of the write that stored this row (search/view.py).
    generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class SearchGenerationRow(Base):
    """One row: a counter each embedded-search write moves in its transaction, and the
    generation of the last rebuild (which deleted rows: views load everything again)."""

    __tablename__ = "search_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    reset: Mapped[int] = mapped_column(BigInteger, default=0)


class SearchFacetRow(Base):
    __tablename__ = "search_facets"
    __table_args__ = (Index("ix_search_facets_facet_value", "facet", "value"),)

    doc_key: Mapped[str] = mapped_column(
        ForeignKey("search_documents.doc_key", ondelete="CASCADE"), primary_key=True
    )
    facet: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000), primary_key=True)


class SearchMetricRow(Base):
    __tablename__ = "search_metrics"
    __table_args__ = (
        Index("ix_search_metrics_name_dataset_value", "name", "dataset", "value"),
        # Per-document lookups (a metric filter or sort on each candidate) must use this one,
        # not the one above, which would scan every document's entry for the name.
        Index("ix_search_metrics_doc_key_name", "doc_key", "name", "dataset", "value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    doc_key: Mapped[str] = mapped_column(ForeignKey("search_documents.doc_key", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str | None] = mapped_column(String(300))
    value: Mapped[float] = mapped_column(Float)


# Full-text indexes over search_documents.tokens that migration 0004 creates outside the ORM:
# an FTS5 table on SQLite (with its shadow tables), a generated tsvector column on PostgreSQL.
FULL_TEXT_TABLE = "search_text"
FULL_TEXT_COLUMN = "text_vector"


def is_mapped(name: str | None, type_: str, parent_names: Any) -> bool:
    """For Alembic's comparisons: everything but the full-text objects above."""
    if type_ == "table":
        return not (name or "").startswith(FULL_TEXT_TABLE)
    return name not in (FULL_TEXT_COLUMN, f"ix_search_documents_{FULL_TEXT_COLUMN}")


class IdempotencyKeyRow(Base):
    """A request's idempotency key, per actor, and what the request returned: a retry with the
    same key returns it and writes nothing (catalog/idempotency)."""

    __tablename__ = "idempotency_keys"

    actor: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    result_ids: Mapped[list[int]] = mapped_column(Json)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
