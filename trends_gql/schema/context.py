"""Per-request context of the resolvers."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio.to_thread
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader

from trends_gql.accounts.auth import current_user
from trends_gql.cache.store import Cache
from trends_gql.core import runs
from trends_gql.core.db import Database
from trends_gql.core.errors import Unauthenticated
from trends_gql.core.models import ExportRun, ImportRun, User
from trends_gql.core.pagination import RecordPage, check_first, decode_id
from trends_gql.core.ratelimit import RateLimiter
from trends_gql.core.settings import Settings
from trends_gql.exports.runs import sweep_export_runs
from trends_gql.imports.runs import sweep_import_runs
from trends_gql.trends import queries

T = TypeVar("T")
# What fails the runs of a kind whose worker died, releasing what they held.
SWEEPS: dict[type[Any], Callable[[Database, Settings], list[Any]]] = {
    ImportRun: sweep_import_runs,
    ExportRun: sweep_export_runs,
}


@dataclass
class Context:
    """What every resolver may use; built per request by the app."""

    db: Database
    settings: Settings
    cache: Cache
    limiter: RateLimiter  # the login limits
    clock: Callable[[], float]  # the app's clock (tests pass a fake one)
    request: HTTPConnection  # a Request, or the WebSocket of operations sent over one
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

    async def run_page(
        self, model: type[runs.RunT], first: int | None, after: str | None
    ) -> RecordPage[runs.RunT]:
        """A page of runs (import or export), newest first, within MAX_PAGE_SIZE."""
        first = check_first(first, self.settings.max_page_size)
        page = await self.db.read(runs.list_runs, model, first, after)
        if await self._swept(model, page.records):
            page = await self.db.read(runs.list_runs, model, first, after)
        return page

    async def run(self, model: type[runs.RunT], id: str) -> runs.RunT | None:
        """The run of `model` with this opaque id, or None."""
        run_id = decode_id(id, model.__name__)
        run = await self.db.read(runs.get_run, model, run_id)
        if run is not None and await self._swept(model, [run]):
            run = await self.db.read(runs.get_run, model, run_id)
        return run

    async def _swept(self, model: type[Any], shown: list[Any]) -> bool:
        """Whether runs whose worker died were failed now, when any shown is active: a read
        never shows a dead run as running, even with no worker or scheduler left to notice."""
        if not any(run.status in runs.ACTIVE for run in shown):
            return False
        sweep = SWEEPS[model]
        ended = await anyio.to_thread.run_sync(
            sweep, self.db, self.settings, limiter=self.db.threads
        )
        return bool(ended)

    async def user(self) -> User | None:
        """The signed-in user, looked up once per request."""
        return current_user(self.request)

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


if TYPE_CHECKING:
    from strawberry.asgi import GraphQL

    # What the view's mixins (CachedResponses, JSONRefusals, MeasuredOperations) derive from to
    # type checkers, so that super() is the view; at run time, object (GraphQLView puts them
    # before Strawberry's GraphQL).
    View = GraphQL[Context, None]
