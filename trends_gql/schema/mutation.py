"""The root Mutation: sign-in, and staff edits guarded by one permission class."""

from dataclasses import asdict
from typing import Any, cast

import anyio.to_thread
import strawberry
from strawberry.types import Info

from trends_gql.accounts import auth, sessions
from trends_gql.accounts.sessions import request_session
from trends_gql.cache import store as cache
from trends_gql.core.errors import BadUserInput
from trends_gql.core.pagination import decode_id, encode_id
from trends_gql.schema.context import Context
from trends_gql.schema.types import TREND_COLUMNS, Trend, TrendInput, TrendPatch, User
from trends_gql.trends import curation, queries

ALL_COLUMNS = set(TREND_COLUMNS.values())
# Non-null in Trend, so a patch may change them but not clear them.
_NOT_NULL = ("impact_strength", "steepl")

STAFF = [auth.IsStaff]


def _changes(patch: TrendPatch) -> dict[str, Any]:
    changes = {k: v for k, v in vars(patch).items() if v is not strawberry.UNSET}
    for name in _NOT_NULL:
        if name in changes and changes[name] is None:
            field = curation.api_name(name)
            raise BadUserInput(f"{field}: cannot be null", field=field)
    return changes


async def _changed(info: Info[Context, None]) -> None:
    # After the commit: the next read, in any process, misses the cache and sees the change.
    await anyio.to_thread.run_sync(cache.invalidate, info.context.settings)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Sign in: opens a new session (its id in a cookie).")
    async def login(self, info: Info[Context, None], email: str, password: str) -> User:
        return cast(User, await auth.login(info.context, email, password))

    @strawberry.mutation(description="Sign out: ends the session; no copy of the cookie works.")
    async def logout(self, info: Info[Context, None]) -> bool:
        await auth.logout(info.context)
        return True

    @strawberry.mutation(
        description="Sign out everywhere else: ends the user's other sessions; how many."
    )
    async def end_other_sessions(self, info: Info[Context, None]) -> int:
        ctx = info.context
        user = await ctx.signed_in_user()
        current = request_session(ctx.request.scope).row
        keep = current.id if current else None
        return await ctx.db.run(lambda s: sessions.end_user_sessions(s, user.id, keep=keep))

    @strawberry.mutation(permission_classes=STAFF, description="Staff: add a trend.")
    async def create_trend(self, info: Info[Context, None], input: TrendInput) -> Trend:
        actor = await info.context.staff_email()
        raw = asdict(input)
        row = await info.context.db.run(
            lambda s: queries.get_trend(s, curation.create_trend(s, raw, actor), ALL_COLUMNS)
        )
        await _changed(info)
        return cast(Trend, row)

    @strawberry.mutation(permission_classes=STAFF, description="Staff: change some fields.")
    async def update_trend(
        self, info: Info[Context, None], id: strawberry.ID, input: TrendPatch
    ) -> Trend:
        pk, changes, actor = decode_id(id), _changes(input), await info.context.staff_email()
        row = await info.context.db.run(
            lambda s: queries.get_trend(
                s, curation.update_trend(s, pk, changes, actor), ALL_COLUMNS
            )
        )
        await _changed(info)
        return cast(Trend, row)

    @strawberry.mutation(permission_classes=STAFF, description="Staff: delete a trend.")
    async def delete_trend(self, info: Info[Context, None], id: strawberry.ID) -> strawberry.ID:
        pk, actor = decode_id(id), await info.context.staff_email()
        await info.context.db.run(curation.delete_trend, pk, actor)
        await _changed(info)
        return strawberry.ID(encode_id(pk))
