"""HTTP caching of anonymous GET queries: ETag, Cache-Control and 304 Not Modified.

An anonymous caller's answer to a query depends only on the data, the request and what shapes
answers (the schema and the limits: the response cache's variant). The data's state is the
cache generation (core/generation.py), which the commit of every write to trends moves; so the
ETag is a digest of the generation, the document, the variables, the operation name and the
media type, and a client or CDN revalidating with If-None-Match gets 304 without anything
being run while nothing was written. Without the generation (CACHE_TTL=0, Redis unreachable)
nothing can tell a change: answers are then not to be stored.
"""

import hashlib
import re
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types.unset import UNSET

from trends_gql.accounts.sessions import request_session
from trends_gql.cache.store import Cache
from trends_gql.core.settings import Settings
from trends_gql.schema.caching import cacheable, request_parts
from trends_gql.web.measurement import note_operation
from trends_gql.web.negotiation import accepted

if TYPE_CHECKING:
    from trends_gql.schema.context import View
else:
    View = object

# A signed-in user's answers (and one that deletes a stale session cookie) stay theirs.
PRIVATE = "private, no-store"
NOT_STORED = "no-store"
# The answer depends on the media type asked for, is public only without a session cookie, and
# carries CORS headers by Origin. Starlette's CORSMiddleware also names Origin, but not in every
# release or case, and a shared cache must never give one origin's answer to another.
VARY = "Accept, Cookie, Origin"
_TAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')


def matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match value names `etag`, by weak comparison (`*` is not handled)."""
    return any(found == etag.removeprefix("W/") for found in _TAG.findall(if_none_match))


def _anonymous(request: Request) -> bool:
    """No signed-in user, and no cookie to delete in the answer."""
    session = request_session(request.scope)
    return session.user is None and not session.changed


class HTTPCaching(View):
    """Mixin for the Strawberry view: validators and 304s for anonymous GET queries."""

    cache: Cache
    settings: Settings
    variant: str  # CachedResponses'

    @property
    def cache_control(self) -> str:
        age = self.settings.http_cache_max_age
        return f"public, max-age={age}" if age else "public, max-age=0, must-revalidate"

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        run = super().run
        is_get = isinstance(request, Request) and request.method == "GET"
        parts = await request_parts(request) if is_get else None
        if parts is None:  # not a GET query: POST, or the GraphiQL page
            return await run(request, context, root_value)
        if not _anonymous(request):
            return _headed(await run(request, context, root_value), PRIVATE)
        generation = await self.cache.generation()
        if generation is None:
            return _headed(await run(request, context, root_value), NOT_STORED)
        request.state.cache_generation = generation  # the caches below need no second look
        media = accepted(request.headers.get("accept"))
        # A tag also lives CACHE_TTL at most, as cached answers do: a write whose bump of the
        # generation could not reach Redis is stale no longer than they are.
        period = int(time.time() // self.settings.cache_ttl)
        digest = self.cache.key(generation, "etag", (self.variant, parts, media, period))
        etag = f'"{hashlib.sha256(digest.encode()).hexdigest()[:32]}"'
        wanted = request.headers.get("if-none-match", "")
        if wanted and matches(wanted, etag):
            note_operation(parts[0], parts[2])
            return self._not_modified(etag)
        response = await run(request, context, root_value)
        body = getattr(response, "body", None)  # None when streamed
        ok = response.status_code == 200 and body is not None and b'"errors"' not in body
        if not ok or not cacheable(parts[0], parts[2], self.settings.max_query_tokens):
            return _headed(response, NOT_STORED)
        if wanted.strip() == "*":  # "any representation": there is one
            return self._not_modified(etag)
        response.headers.update(self._validators(etag))
        return response

    def _validators(self, etag: str) -> dict[str, str]:
        return {"ETag": etag, "Cache-Control": self.cache_control, "Vary": VARY}

    def _not_modified(self, etag: str) -> Response:
        return Response(status_code=304, headers=self._validators(etag))


def _headed(response: Response, cache_control: str) -> Response:
    response.headers["Cache-Control"] = cache_control
    return response
