"""Import runs over GraphQL: uploads, the media scan on demand, and the runs' history (staff)."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import cast

import anyio.to_thread
import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload
from strawberry.types import Info

from trends_gql.core import models
from trends_gql.core.pagination import encode_id
from trends_gql.imports import intake
from trends_gql.schema.context import Context
from trends_gql.schema.mutation import STAFF
from trends_gql.schema.types import Connection, root_id

RunSource = models.RunSource
RunStatus = models.RunStatus
for _enum in (RunSource, RunStatus):
    strawberry.enum(_enum)  # in place, as in types.py
_CHUNK = 1 << 20


@strawberry.type
class RowError:
    line: int
    column: str | None
    message: str


@strawberry.type(description="One import of one file. Resolvers pass the run record as its root.")
class ImportRun:
    file_name: str
    source: RunSource
    dry_run: bool
    status: RunStatus
    rows_total: int
    rows_processed: int
    rows_created: int
    rows_skipped: int
    rows_invalid: int
    message: str | None
    triggered_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field(description="Opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id(root_id(self), "ImportRun"))

    @strawberry.field(description="The first row errors (at most 100).")
    def errors(self) -> list[RowError]:
        return [RowError(**e) for e in cast(models.ImportRun, self).errors]  # root is the run


@strawberry.type
class ImportQuery:
    @strawberry.field(permission_classes=STAFF, description="Staff: import runs, newest first.")
    async def import_runs(
        self, info: Info[Context, None], first: int | None = 20, after: str | None = None
    ) -> Connection[ImportRun]:
        page = await info.context.run_page(models.ImportRun, first, after)
        return Connection[ImportRun](page=page)

    @strawberry.field(permission_classes=STAFF, description="Staff: one import run.")
    async def import_run(self, info: Info[Context, None], id: strawberry.ID) -> ImportRun | None:
        return cast(ImportRun | None, await info.context.run(models.ImportRun, id))


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(_CHUNK):
        yield chunk


@strawberry.type
class ImportMutation:
    @strawberry.mutation(permission_classes=STAFF, description="Staff: upload a CSV to import.")
    async def import_trends(
        self, info: Info[Context, None], file: Upload, dry_run: bool | None = False
    ) -> ImportRun:
        ctx = info.context
        email = await ctx.staff_email()
        # Upload is bytes to type checkers; over HTTP, Strawberry passes Starlette's UploadFile.
        upload = cast(UploadFile, file)
        run = await intake.upload(
            ctx.db, ctx.settings, _chunks(upload), upload.filename, email, bool(dry_run)
        )
        return cast(ImportRun, run)

    @strawberry.mutation(permission_classes=STAFF, description="Staff: scan the media folder now.")
    async def run_media_import(self, info: Info[Context, None]) -> list[ImportRun]:
        ctx = info.context
        email = await ctx.staff_email()
        found = await anyio.to_thread.run_sync(intake.scan, ctx.db, ctx.settings, email)
        return cast(list[ImportRun], found)
