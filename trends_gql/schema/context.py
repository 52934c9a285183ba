"""Per-request context of the resolvers."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from starlette.requests import Request
from strawberry.dataloader import DataLoader

from trends_gql.accounts.auth import current_user
from trends_gql.cache.store import ResponseCache
from trends_gql.core.db import Database
from trends_gql.core.errors import Unauthenticated
from trends_gql.core.models import User
from trends_gql.core.settings import Settings
from trends_gql.trends import queries

T = TypeVar("T")


@dataclass
class Context:
    """What every resolver may use; built per request by the app."""

    db: Database
    settings: Settings
    cache: ResponseCache
    request: Request
    response: Any = None

    trend_loader: DataLoader[tuple[int, frozenset[str]], Any] = field(init=False)

    def __post_init__(self) -> None:
        self.trend_loader = DataLoader(self._cached_trends)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(session, *args, **kwargs)`, a read the same for every caller, cached."""
        return await self.cached(
            fn.__qualname__,
            (args, kwargs),
            lambda: self.db.read(lambda session: fn(session, *args, **kwargs)),
        )

    async def trend(self, pk: int, columns: frozenset[str]) -> Any | None:
        """One trend row: the request's trends are looked up in the cache, then read, together."""
        return await self.trend_loader.load((pk, columns))

    async def cached(self, name: str, args: Any, compute: Callable[[], Awaitable[T]]) -> T:
        """What `compute` returns for the named read and its arguments, through the cache."""
        return await self.cache.remember(await self._generation(), name, args, compute)

    async def _generation(self) -> int | None:
        state = self.request.state
        if not hasattr(state, "cache_generation"):  # staff, or a request the view did not look up
            state.cache_generation = await self.cache.generation()
        return cast(int | None, state.cache_generation)

    async def _cached_trends(self, keys: list[tuple[int, frozenset[str]]]) -> list[Any]:
        generation = await self._generation()
        return await self.cache.remember_many(generation, "trend", keys, self._load_trends)

    async def _load_trends(self, keys: list[tuple[int, frozenset[str]]]) -> list[Any]:
        by_columns: dict[frozenset[str], set[int]] = {}
        for pk, columns in keys:
            by_columns.setdefault(columns, set()).add(pk)
        found = {
            columns: await self.db.read(queries.get_trends, pks, columns)
            for columns, pks in by_columns.items()
        }
        return [found[columns].get(pk) for pk, columns in keys]

    async def user(self) -> User | None:
        """The signed-in user, looked up once per request."""
        return await current_user(self.request, self.db)

    async def staff_email(self) -> str:
        """The email of the staff member making the request (IsStaff has checked it)."""
        user = await self.user()
        assert user is not None, "IsStaff ran first"
        return user.email

    async def signed_in_user(self) -> User:
        """The signed-in user (any role); UNAUTHENTICATED when anonymous."""
        user = await self.user()
        if user is None:
            raise Unauthenticated("sign in to do this")
        return user
