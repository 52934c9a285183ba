"""The root Subscription: staff follow an import run live, over graphql-transport-ws.

Changes are told through Redis pub/sub by whichever process wrote them (core/changes.py); each
tells only which run changed, and the run is read again: every event is the stored run, as
`importRun` answers it.
"""

from collections.abc import AsyncGenerator
from typing import cast

import strawberry
from strawberry.types import Info

from trends_gql.core import changes, models, runs
from trends_gql.core.db import IMPORT_RUN
from trends_gql.core.errors import NotFound
from trends_gql.core.pagination import decode_id
from trends_gql.schema.context import Context
from trends_gql.schema.imports import ImportRun
from trends_gql.schema.mutation import STAFF

# Seconds without news after which the run is read anyway: its worker may have died (the read
# then fails the run, see Context.run), or Redis may have been unable to tell a change.
RECHECK_SECONDS = 15.0


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=STAFF,
        description="Staff: an import run at once, then after each change (its status, "
        "rowsProcessed as it goes, the outcome); completes once it SUCCEEDED or FAILED.",
    )
    async def import_run_updated(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> AsyncGenerator[ImportRun, None]:
        ctx = info.context
        run_id = decode_id(id, "ImportRun")
        async with changes.follow(ctx.settings, IMPORT_RUN, run_id) as follower:
            run = await ctx.run(models.ImportRun, id)  # read once subscribed: nothing is missed
            if run is None:
                raise NotFound(f"no import run {id}")
            shown = None
            while run is not None:
                state = run.model_dump()
                if state != shown:  # a write that changed nothing is no event
                    shown = state
                    yield cast(ImportRun, run)  # the run record is the type's root
                if run.status not in runs.ACTIVE:
                    return
                if await follower.changed(RECHECK_SECONDS):
                    run = await ctx.db.read(runs.get_run, models.ImportRun, run_id)
                else:
                    run = await ctx.run(models.ImportRun, id)
