"""Export runs over GraphQL: requesting an export, and the runs' history with downloads (staff)."""

from datetime import datetime
from typing import cast

import anyio.to_thread
import strawberry
from strawberry.types import Info

from trends_gql.core import models
from trends_gql.core.pagination import encode_id
from trends_gql.exports import runs as exports
from trends_gql.schema.context import Context
from trends_gql.schema.mutation import STAFF
from trends_gql.schema.types import Connection, TrendFilter, root_id

ExportFormat = models.ExportFormat
RunStatus = models.RunStatus
for _enum in (ExportFormat, RunStatus):
    strawberry.enum(_enum)  # in place, as in types.py
KIND = "ExportRun"


def download_url(run_id: int) -> str:
    """The relative URL of an export's file."""
    return f"/exports/{encode_id(run_id, KIND)}"


@strawberry.type(description="One export to a file. Resolvers pass the run record as its root.")
class ExportRun:
    format: ExportFormat
    status: RunStatus
    row_count: int | None
    message: str | None
    triggered_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field(description="Opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id(root_id(self), KIND))

    @strawberry.field(description="Where staff download the file (relative URL) once it is done.")
    def download_url(self) -> str | None:
        if self.status is not models.RunStatus.SUCCEEDED:
            return None
        return download_url(root_id(self))


@strawberry.type
class ExportQuery:
    @strawberry.field(permission_classes=STAFF, description="Staff: export runs, newest first.")
    async def export_runs(
        self, info: Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[ExportRun]:
        page = await info.context.run_page(models.ExportRun, first, after)
        return Connection[ExportRun](page=page)

    @strawberry.field(permission_classes=STAFF, description="Staff: one export run.")
    async def export_run(self, info: Info[Context, None], id: strawberry.ID) -> ExportRun | None:
        return cast(ExportRun | None, await info.context.run(models.ExportRun, id))


@strawberry.type
class ExportMutation:
    @strawberry.mutation(permission_classes=STAFF, description="Staff: export trends to a file.")
    async def export_trends(
        self,
        info: Info[Context, None],
        format: ExportFormat | None = ExportFormat.CSV,
        filter: TrendFilter | None = None,
    ) -> ExportRun:
        ctx = info.context
        email = await ctx.staff_email()
        run = await anyio.to_thread.run_sync(
            exports.request_export,
            ctx.db,
            ctx.settings,
            format or models.ExportFormat.CSV,
            filter.to_query() if filter else None,
            email,
        )
        return cast(ExportRun, run)
