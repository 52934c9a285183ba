"""SQLModel tables (a trend's data fields are declared in core/fields.py)."""

import enum
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from trends_gql.core import summary
from trends_gql.core.db import UTCDateTime
from trends_gql.core.fields import (
    MACROTREND_MAX,
    MEGATREND_MAX,
    SEARCHED,
    ImpactStrength,
    Steepl,
    TechnologyReadinessLevel,
)

# Midpoints of the TRL bands 1-3, 4-6 and 7-9 that the radar chart's legend shows.
TRL_SCORES = {
    TechnologyReadinessLevel.PILOT: 2,
    TechnologyReadinessLevel.DEVELOPMENT: 5,
    TechnologyReadinessLevel.DEPLOY: 8,
}


class _Keyed(Protocol):
    id: int | None


def stored_id(row: _Keyed) -> int:
    """The id of a row that has been stored (a table model's id is None only until then)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has not been stored: it has no id")
    return row.id


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model (SQLModel does not declare __table__ to type checkers)."""
    table = sa.inspect(model).local_table
    assert isinstance(table, sa.Table), f"{model.__name__} is not a table model"
    return table


def _enum(cls: type[enum.Enum], name: str) -> sa.Enum:
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Trend(SQLModel, table=True):
    """One trend record as delivered by the research pipeline."""

    __tablename__ = "trend"
    # No indexes on the enum columns: with 3 to 5 values each, a filter on one matches a fifth
    # of the rows or more, where PostgreSQL scans the table anyway, and each index slows imports.
    __table_args__ = (
        sa.CheckConstraint("total_count_of_publications >= 0", name="ck_trend_publications"),
        sa.CheckConstraint("total_count_of_patents >= 0", name="ck_trend_patents"),
        sa.CheckConstraint("length(trim(megatrend)) > 0", name="ck_trend_megatrend_blank"),
        sa.Index("ux_trend_fingerprint", "fingerprint", unique=True),
        # Composite with id, so that a page of one megatrend by macrotrend (the dashboard's) or
        # of one macrotrend by id is a range of the index, however deep the page.
        sa.Index("ix_trend_megatrend_macrotrend", sa.text("lower(megatrend)"), "macrotrend", "id"),
        sa.Index("ix_trend_macrotrend", sa.text("lower(macrotrend)"), "id"),
        # `updatedSince` (clients that sync changes) asks for the few rows changed lately; with
        # id, their ids are read from the index alone.
        sa.Index("ix_trend_updated_at", "updated_at", "id"),
        # Pages by publications or patents (largest first, as the pages sort them) and their
        # bounds. PostgreSQL only: SQLite's index cannot say NULLS LAST, and its tables are small.
        *(
            sa.Index(f"ix_trend_{short}", sa.text(f"{name} DESC NULLS LAST"), "id").ddl_if(
                dialect="postgresql"
            )
            for short, name in (
                ("publications", "total_count_of_publications"),
                ("patents", "total_count_of_patents"),
            )
        ),
        # `search` is ILIKE '%term%' on each of these columns; trigrams serve it on PostgreSQL.
        # SQLite has no such index and scans (an index on the bare columns would not serve it).
        sa.Index(
            "ix_trend_search",
            *SEARCHED,
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(SEARCHED, "gin_trgm_ops"),
        ).ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    megatrend: str = Field(sa_type=sa.String(MEGATREND_MAX), nullable=False)
    macrotrend: str = Field(sa_type=sa.String(MACROTREND_MAX), nullable=False)
    challenges_and_research_gaps: str = Field(sa_type=sa.Text, nullable=False)
    total_count_of_publications: int | None = Field(default=None)
    total_count_of_patents: int | None = Field(default=None)
    technology_readiness_level: TechnologyReadinessLevel | None = Field(
        default=None, sa_type=_enum(TechnologyReadinessLevel, "technology_readiness_level")
    )
    impact_strength: ImpactStrength = Field(
        default=ImpactStrength.LOW, sa_type=_enum(ImpactStrength, "impact_strength"), nullable=False
    )
    steepl: Steepl = Field(default=Steepl.S, sa_type=_enum(Steepl, "steepl"), nullable=False)
    relevant_industries: str | None = Field(default=None, sa_type=sa.Text)
    real_world_application_and_use_cases: str | None = Field(default=None, sa_type=sa.Text)
    # Raw SHA-256 bytes: half the index of hex text, and compared without collation rules.
    fingerprint: bytes = Field(sa_type=sa.LargeBinary(32), nullable=False)
    uploaded_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


TREND_TABLE = table_of(Trend)


class _SummaryCounts(SQLModel):
    """A count of trends per key of the summary (summary.KEY)."""

    megatrend: str = Field(sa_type=sa.String(MEGATREND_MAX), nullable=False)
    macrotrend: str = Field(sa_type=sa.String(MACROTREND_MAX), nullable=False)
    technology_readiness_level: TechnologyReadinessLevel | None = Field(
        default=None, sa_type=_enum(TechnologyReadinessLevel, "technology_readiness_level")
    )
    impact_strength: ImpactStrength = Field(
        sa_type=_enum(ImpactStrength, "impact_strength"), nullable=False
    )
    steepl: Steepl = Field(sa_type=_enum(Steepl, "steepl"), nullable=False)
    trend_count: int = Field(nullable=False)


class TrendSummary(_SummaryCounts, table=True):
    """How many trends have each megatrend, macrotrend, TRL, impact and STEEPL (exact case).

    Kept exact in the transaction of every write to trend by triggers (core/summary.py), so that
    counts, facets and the aggregates read a few thousand rows instead of every trend.
    """

    __tablename__ = "trend_summary"
    __table_args__ = (
        sa.Index(
            "ux_trend_summary_key",
            *(c if c in summary.KEY else sa.text(c) for c in summary.KEY_INDEX),
            unique=True,
        ),
        # Counts under a megatrend or macrotrend filter (whatever its case) read their keys
        # only: at 1,000,000 trends, 0.08 ms instead of 1.1-1.4 ms for all 2,640 keys.
        sa.Index("ix_trend_summary_megatrend", sa.text("lower(megatrend)")),
        sa.Index("ix_trend_summary_macrotrend", sa.text("lower(macrotrend)")),
    )

    id: int | None = Field(default=None, primary_key=True)


TREND_SUMMARY_TABLE = table_of(TrendSummary)


class TrendSummaryChange(_SummaryCounts, table=True):
    """PostgreSQL: counts per key that transactions in flight add to trend_summary at commit.

    Each statement that writes trend appends its counts; the first row of a transaction queues
    the fold into trend_summary at its commit (core/summary.py). Empty between transactions,
    and always on SQLite, whose triggers write trend_summary directly.
    """

    __tablename__ = "trend_summary_change"
    __table_args__ = (sa.Index("ix_trend_summary_change_txid", "txid"),)

    id: int | None = Field(default=None, primary_key=True)
    txid: int = Field(sa_type=sa.BigInteger, nullable=False)
    first: bool = Field(default=False, nullable=False)


class _BucketCounts(SQLModel):
    """A count of trends per bucket of a count's values (summary.BUCKET_KEY)."""

    count_name: str = Field(sa_type=sa.String(16), nullable=False)  # fields.COUNTS' short name
    bucket: int = Field(nullable=False)  # the count // summary.BUCKET_WIDTH
    trend_count: int = Field(nullable=False)


class TrendCountBucket(_BucketCounts, table=True):
    """How many trends have their publications (or patents) in each bucket of 100 values.

    Kept exact on PostgreSQL by triggers as trend_summary is (core/summary.py), so that a count
    under a bound sums the buckets within it and reads only the trends of the bucket it cuts.
    Empty on SQLite, which has no index on the counts to read those trends with.
    """

    __tablename__ = "trend_count_bucket"
    __table_args__ = (sa.Index("ux_trend_count_bucket_key", *summary.BUCKET_KEY, unique=True),)

    id: int | None = Field(default=None, primary_key=True)


TREND_COUNT_BUCKET_TABLE = table_of(TrendCountBucket)


class TrendCountBucketChange(_BucketCounts, table=True):
    """PostgreSQL: counts per bucket that transactions in flight add at commit, as
    TrendSummaryChange does for trend_summary."""

    __tablename__ = "trend_count_bucket_change"
    __table_args__ = (sa.Index("ix_trend_count_bucket_change_txid", "txid"),)

    id: int | None = Field(default=None, primary_key=True)
    txid: int = Field(sa_type=sa.BigInteger, nullable=False)
    first: bool = Field(default=False, nullable=False)


@sa.event.listens_for(SQLModel.metadata, "after_create")
def _create_summary_triggers(target: sa.MetaData, connection: sa.Connection, **kw: Any) -> None:
    """After create_all, the triggers the migrations create (on trend, writing the summaries)."""
    for statement in summary.triggers(connection.dialect.name):
        connection.exec_driver_sql(statement)


class User(SQLModel, table=True):
    """A person who signs in; staff may change trend data."""

    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=sa.String(254), nullable=False, unique=True)
    password_hash: str = Field(sa_type=sa.String(255), nullable=False, repr=False)
    is_active: bool = Field(default=True, nullable=False)
    is_staff: bool = Field(default=False, nullable=False)
    is_superuser: bool = Field(default=False, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_login: datetime | None = Field(default=None, sa_type=UTCDateTime)


SESSION_ADDRESS_MAX = 64
SESSION_AGENT_MAX = 255


class UserSession(SQLModel, table=True):
    """A signed-in session: the cookie holds a random id, this row holds only its hash."""

    __tablename__ = "user_session"
    __table_args__ = (
        sa.Index("ux_user_session_token_hash", "token_hash", unique=True),
        sa.Index("ix_user_session_user_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the cookie's value: a copy of this table cannot sign anyone in.
    token_hash: bytes = Field(sa_type=sa.LargeBinary(32), nullable=False)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # The absolute end (created_at + SESSION_MAX_AGE); idleness ends it earlier.
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    client_address: str | None = Field(default=None, sa_type=sa.String(SESSION_ADDRESS_MAX))
    user_agent: str | None = Field(default=None, sa_type=sa.String(SESSION_AGENT_MAX))


PERSISTED_KEY_MAX = 128


class PersistedOperation(SQLModel, table=True):
    """An operation registered with `trends persist`: PERSISTED_QUERIES_ONLY runs only these."""

    __tablename__ = "persisted_operation"
    __table_args__ = (
        sa.Index("ux_persisted_operation_key", "key", unique=True),
        sa.Index("ix_persisted_operation_body_sha256", "body_sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # What clients send as extensions.persistedQuery.sha256Hash: the SHA-256 of the body for
    # .graphql files, the manifest's id otherwise.
    key: str = Field(sa_type=sa.String(PERSISTED_KEY_MAX), nullable=False)
    name: str | None = Field(default=None, sa_type=sa.String(255))
    body: str = Field(sa_type=sa.Text, nullable=False)
    # SHA-256 (hex) of the body's canonical text (schema/allowlist.py): a document sent as
    # text is found by it.
    body_sha256: str = Field(sa_type=sa.String(64), nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class RunSource(enum.StrEnum):
    UPLOAD = "UPLOAD"
    MEDIA = "MEDIA"
    CLI = "CLI"


class RunStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class ExportFormat(enum.StrEnum):
    CSV = "CSV"
    JSON = "JSON"


class ImportRun(SQLModel, table=True):
    """One import of one file, from queueing to its outcome."""

    __tablename__ = "import_run"
    __table_args__ = (sa.Index("ix_import_run_sha256", "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    file_name: str = Field(sa_type=sa.String(255), nullable=False)
    stored_path: str = Field(sa_type=sa.Text, nullable=False)
    sha256: str = Field(sa_type=sa.String(64), nullable=False)
    source: RunSource = Field(sa_type=_enum(RunSource, "run_source"), nullable=False)
    dry_run: bool = Field(default=False, nullable=False)
    status: RunStatus = Field(
        default=RunStatus.QUEUED, sa_type=_enum(RunStatus, "run_status"), nullable=False
    )
    rows_total: int = Field(default=0, nullable=False)
    rows_processed: int = Field(default=0, nullable=False)
    rows_created: int = Field(default=0, nullable=False)
    rows_skipped: int = Field(default=0, nullable=False)
    rows_invalid: int = Field(default=0, nullable=False)
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    message: str | None = Field(default=None, sa_type=sa.Text)
    triggered_by: str = Field(sa_type=sa.String(254), nullable=False)
    job_id: str | None = Field(default=None, sa_type=sa.String(64))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ExportRun(SQLModel, table=True):
    """One export of the trends (all, or those of a filter) to a file."""

    __tablename__ = "export_run"

    id: int | None = Field(default=None, primary_key=True)
    format: ExportFormat = Field(sa_type=_enum(ExportFormat, "export_format"), nullable=False)
    filter: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    status: RunStatus = Field(
        default=RunStatus.QUEUED, sa_type=_enum(RunStatus, "run_status"), nullable=False
    )
    row_count: int | None = Field(default=None)
    path: str | None = Field(default=None, sa_type=sa.Text)
    message: str | None = Field(default=None, sa_type=sa.Text)
    triggered_by: str = Field(sa_type=sa.String(254), nullable=False)
    job_id: str | None = Field(default=None, sa_type=sa.String(64))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
