"""The root Mutation: sign-in, and staff edits guarded by one permission class."""

from dataclasses import asdict
from typing import Any, cast

import strawberry
from strawberry.permission import BasePermission
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case

from trends_gql.accounts import auth, sessions
from trends_gql.accounts.sessions import request_session
from trends_gql.core.errors import BadUserInput
from trends_gql.core.fields import TREND_FIELDS
from trends_gql.core.models import stored_id
from trends_gql.core.pagination import decode_id, encode_id
from trends_gql.schema.context import Context
from trends_gql.schema.types import TREND_COLUMNS, Trend, TrendInput, TrendPatch, User
from trends_gql.trends import curation, queries

ALL_COLUMNS = set(TREND_COLUMNS.values())
# Non-null in Trend, as they have a default: a patch may change them but not clear them.
_NOT_NULL = tuple(f.name for f in TREND_FIELDS if f.default is not None)

STAFF: list[type[BasePermission]] = [auth.IsStaff]


def _changes(patch: TrendPatch) -> dict[str, Any]:
    changes = {k: v for k, v in vars(patch).items() if v is not strawberry.UNSET}
    for name in _NOT_NULL:
        if name in changes and changes[name] is None:
            field = to_camel_case(name)
            raise BadUserInput(f"{field}: cannot be null", field=field)
    return changes


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Sign in: opens a new session (its id in a cookie).")
    async def login(self, info: Info[Context, None], email: str, password: str) -> User:
        ctx = info.context
        user = await auth.login(
            ctx.request, ctx.db, ctx.settings, ctx.limiter, ctx.clock, email, password
        )
        return cast(User, user)

    @strawberry.mutation(description="Sign out: ends the session; no copy of the cookie works.")
    async def logout(self, info: Info[Context, None]) -> bool:
        await auth.logout(info.context.request, info.context.db)
        return True

    @strawberry.mutation(
        description="Sign out everywhere else: ends the user's other sessions; how many."
    )
    async def end_other_sessions(self, info: Info[Context, None]) -> int:
        ctx = info.context
        user_id = stored_id(await ctx.signed_in_user())
        current = request_session(ctx.request.scope).row
        keep = current.id if current else None
        return await ctx.db.run(lambda s: sessions.end_user_sessions(s, user_id, keep=keep))

    @strawberry.mutation(permission_classes=STAFF, description="Staff: add a trend.")
    async def create_trend(self, info: Info[Context, None], input: TrendInput) -> Trend:
        actor = await info.context.staff_email()
        raw = asdict(input)
        row = await info.context.db.run(
            lambda s: queries.get_trend(s, curation.create_trend(s, raw, actor), ALL_COLUMNS)
        )
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
        return cast(Trend, row)

    @strawberry.mutation(permission_classes=STAFF, description="Staff: delete a trend.")
    async def delete_trend(self, info: Info[Context, None], id: strawberry.ID) -> strawberry.ID:
        pk, actor = decode_id(id), await info.context.staff_email()
        await info.context.db.run(curation.delete_trend, pk, actor)
        return strawberry.ID(encode_id(pk))
