"""The Starlette application: /, /graphql, /healthz, export downloads, CORS."""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from trends_gql.accounts.auth import SessionCookies
from trends_gql.cache.store import Cache
from trends_gql.core import revisions
from trends_gql.core.db import Database
from trends_gql.core.ratelimit import RateLimiter
from trends_gql.core.reads import Reads
from trends_gql.core.settings import Settings, configure_logging, get_settings, redis_problem
from trends_gql.schema import Context, build_schema
from trends_gql.schema.caching import CachedResponses
from trends_gql.schema.persisted import PersistedQueries
from trends_gql.schema.prepared import PreparedReads
from trends_gql.web.assets import STATIC_PATH, Assets, Page
from trends_gql.web.cors import CORS
from trends_gql.web.downloads import download_export
from trends_gql.web.etags import HTTPCaching
from trends_gql.web.measurement import MeasuredOperations, RequestMetrics
from trends_gql.web.metrics import METRICS_PATH, metrics_route, watch_pool
from trends_gql.web.negotiation import ResponseMediaType
from trends_gql.web.pages import Pages, home_route, page_response, page_route
from trends_gql.web.protection import (
    GRAPHQL_PATH,
    JSONRefusals,
    is_exempt,
    protection_middleware,
)
from trends_gql.web.sockets import StaffSockets

log = logging.getLogger(__name__)


class TextFrames(ASGIWebSocketAdapter):
    """WebSocket messages as text frames: browser clients (graphql-ws) cannot read binary ones,
    which Strawberry sends when `encode_json` gives bytes, as ours does for HTTP's sake."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class GraphQLView(
    StaffSockets,
    MeasuredOperations,
    JSONRefusals,
    PersistedQueries,
    HTTPCaching,
    CachedResponses,
    PreparedReads,
    GraphQL[Context, None],
):
    websocket_adapter_class = TextFrames

    def __init__(
        self,
        db: Database,
        settings: Settings,
        cache: Cache,
        limiter: RateLimiter,
        clock: Callable[[], float],
        graphiql: Page,
        reads: Reads,
    ) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            multipart_uploads_enabled=True,  # importTrends; the CSRF rule guards multipart
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),  # staff only: web/sockets.py
        )
        self.db = db
        self.settings = settings
        self.cache = cache
        self.limiter = limiter
        self.clock = clock
        self.graphiql = graphiql
        self.reads = reads

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL from the vendored files, opened on an example query of this API."""
        return self.graphiql.text

    async def render_graphql_ide(self, request: Request) -> Response:
        return page_response(self.graphiql)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(
            db=self.db,
            settings=self.settings,
            cache=self.cache,
            limiter=self.limiter,
            clock=self.clock,
            request=request,
            response=response,
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def fixed_json(size: int) -> bytes:
    """A JSON object of exactly `size` bytes, or the smallest one when `size` is smaller."""
    head, tail = b'{"pad":"', b'"}'
    return head + b"x" * max(size - len(head) - len(tail), 0) + tail


def fixed_route(size: int) -> Callable[[Request], Awaitable[Response]]:
    """The benchmark's ceiling: the same server and middleware as /graphql, and no work."""
    body = fixed_json(size)

    async def fixed(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return fixed


def create_app(
    settings: Settings | None = None, clock: Callable[[], float] = time.time
) -> Starlette:
    """The ASGI app for `settings` (default: the process settings).

    `clock` gives the time for the login and request limits and session expiry; tests pass a
    fake one.
    """
    settings = settings or get_settings()
    if not logging.getLogger().handlers:  # unless the host (the CLI, a test runner) did
        configure_logging(settings.log_level)
    db = Database.of(
        settings,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    watch_pool(db)
    shipped = revisions.shipped_revisions()  # read once: the head revision this code needs

    def migration_state() -> tuple[str, bool]:
        with db.engine.connect() as conn:
            return revisions.describe(revisions.current_revision(conn), shipped)

    async def healthz(request: Request) -> JSONResponse:
        try:
            migrations, usable = await anyio.to_thread.run_sync(migration_state)
            database = "ok"
        except Exception as exc:  # any failure to answer is "down", whatever the driver
            log.warning("health check: database unavailable: %s", exc)
            database, migrations, usable = "unavailable", "unknown", False
        problem = await anyio.to_thread.run_sync(redis_problem, settings.redis_url)
        status = 200 if usable else 503
        body = {
            "status": "ok" if status == 200 else "unavailable",
            "database": database,
            "migrations": migrations,
            "redis": "ok" if problem is None else f"unavailable: {problem}",
            "cache": cache.status,
        }
        return JSONResponse(body, status_code=status)

    limiter = RateLimiter(
        settings.redis_url,
        namespace=settings.rate_limit_namespace,
        clock=clock,
        timeout=settings.rate_limit_timeout,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await limiter.aclose()
        await cache.aclose()
        await graphql.close_documents()
        reads.close()
        db.dispose()

    cache = Cache(settings)
    assets = Assets()
    pages = Pages(assets, GRAPHQL_PATH, settings.graphiql_enabled)
    reads = Reads(db, pool_size=settings.db_pool_size)
    graphql = GraphQLView(db, settings, cache, limiter, clock, pages.graphiql, reads)
    app = Starlette(
        routes=[
            # First: the router tries each route in turn, and nearly every request is this one.
            Route(GRAPHQL_PATH, graphql, methods=["GET", "POST", "OPTIONS"]),
            WebSocketRoute(GRAPHQL_PATH, graphql),
            Route("/", home_route(pages.dashboard, GRAPHQL_PATH), methods=["GET"]),
            Route("/console", page_route(pages.console), methods=["GET"]),
            Mount(STATIC_PATH, app=assets, name="static"),
            Route("/healthz", healthz),
            Route(METRICS_PATH, metrics_route(db, settings), methods=["GET"]),
            Route("/exports/{id}", download_export, methods=["GET"]),
            *(
                [Route("/bench/fixed", fixed_route(settings.bench_body_bytes), methods=["GET"])]
                if settings.bench_route
                else []
            ),
        ],
        middleware=[
            # Outermost: times whole requests and counts the refusals of the others too.
            Middleware(RequestMetrics, path=GRAPHQL_PATH, settings=settings),
            Middleware(
                CORS,
                allow_origins=settings.cors_origins,
                allow_credentials=True,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=[
                    *("content-type", "graphql-require-preflight", "x-requested-with"),
                    *settings.cors_allow_headers,
                ],
                max_age=600,
            ),
            # Inside CORS, so that its 503 (database down) is readable by allowed origins.
            Middleware(ResponseMediaType, path=GRAPHQL_PATH),
            Middleware(
                SessionCookies,
                db=db,
                settings=settings,
                clock=clock,
                skip=is_exempt,
            ),
            *protection_middleware(settings, limiter),
        ],
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.reads = reads
    app.state.cache = cache
    app.state.settings = settings
    return app
