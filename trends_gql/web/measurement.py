"""What each GraphQL request records: its operation name, its outcome and the time it took."""

import re
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trends_gql.core import instruments
from trends_gql.core.settings import Settings

if TYPE_CHECKING:
    from trends_gql.schema.context import View
else:
    View = object

_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
# The name of a document's first operation, read without parsing it: ignored tokens (possessive:
# no backtracking), the operation type, then its name.
_IGNORED = r"(?:[\s,\ufeff]|#[^\n\r]*+)*+"
_FIRST_OPERATION = re.compile(
    rf"{_IGNORED}(?:query|mutation|subscription)(?![_0-9A-Za-z]){_IGNORED}([_A-Za-z][_0-9A-Za-z]*)"
)


class _Probe:
    __slots__ = ("batch", "body", "clean", "operation_name", "query", "read", "status")

    def __init__(self) -> None:
        self.read = self.batch = self.clean = False
        self.query: str | None = None
        self.operation_name: str | None = None
        self.status: int | None = None
        self.body: bytes | None = None


_PROBE: ContextVar[_Probe | None] = ContextVar("trends_metrics_probe", default=None)


def note_operation(query: str | None, operation_name: str | None, batch: bool = False) -> None:
    """Tell the request's metrics which operation it runs (once the request is read)."""
    probe = _PROBE.get()
    if probe is not None:
        probe.read, probe.batch = True, batch
        probe.query, probe.operation_name = query, operation_name


def note_clean_answer() -> None:
    """Tell the request's metrics that its answer holds no error, so that they need not look
    for one in its body (a cached page of 440 trends spent half its time in that search)."""
    probe = _PROBE.get()
    if probe is not None:
        probe.clean = True


class MeasuredOperations(View):
    """Mixin for the Strawberry view: notes the operation of each request it reads."""

    async def parse_http_body(self, request: Any) -> Any:
        data = await super().parse_http_body(request)
        if isinstance(data, list):
            note_operation(None, None, batch=True)
        else:
            note_operation(data.query, data.operation_name)
        return data


class RequestMetrics:
    """Count and time each GraphQL request by operation name and outcome, refusals included.

    The outcome is `ok` or the code of the response's first error. Operation names are labels
    only while there are at most `max_operations` of them, admitted when they first succeed;
    others are `other`, as are requests refused before they were read.
    """

    def __init__(self, app: ASGIApp, path: str, settings: Settings) -> None:
        self.app = app
        self.path = path
        self.max_operations = settings.metrics_max_operations
        self.names: set[str] = set()
        self.children: dict[tuple[str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        probe = _Probe()
        reset = _PROBE.set(probe)
        started = time.perf_counter()

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                probe.status = message["status"]
            elif probe.body is None:
                probe.body = message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            _PROBE.reset(reset)
            self.record(probe, time.perf_counter() - started)

    def record(self, probe: _Probe, seconds: float) -> None:
        if not probe.read and probe.status == 200:
            return  # not a GraphQL request: the GraphiQL page
        clean = probe.clean and probe.status == 200
        outcome = "ok" if clean else _outcome(probe.status, probe.body)
        key = (self.operation(probe, outcome), outcome)
        children = self.children.get(key)
        if children is None:
            result = "ok" if outcome == "ok" else "error"
            children = (
                instruments.REQUESTS.labels(*key),
                instruments.LATENCY.labels(key[0], result),
            )
            self.children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def operation(self, probe: _Probe, outcome: str) -> str:
        """The operation label of a request: its name while names are few, or a group."""
        if not probe.read:
            return "other"
        if probe.batch:
            return "batch"
        name = probe.operation_name
        if name is None and probe.query is not None:
            found = _FIRST_OPERATION.match(probe.query)
            name = found[1] if found else None
        if name is None:
            return "anonymous"
        if name in self.names:
            return name
        if outcome == "ok" and len(self.names) < self.max_operations and _NAME.fullmatch(name):
            self.names.add(name)
            return name
        return "other"


def _outcome(status: int | None, body: bytes | None) -> str:
    """`ok`, or the code of the first error of a response (an HTTP status when it has none)."""
    if status is None:
        return "INTERNAL_SERVER_ERROR"  # it raised before answering
    fallback = "ok" if status < 400 else f"HTTP_{status}"
    if not body or b'"errors"' not in body:
        return fallback
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return fallback
    for result in parsed if isinstance(parsed, list) else [parsed]:
        errors = result.get("errors") if isinstance(result, dict) else None
        if errors and isinstance(errors, list):
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = (first.get("extensions") or {}).get("code")
            return code if isinstance(code, str) and _CODE.fullmatch(code) else "OTHER_ERROR"
    return fallback
