"""File downloads for staff sessions: the files of finished exports."""

import logging

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from trends_gql.accounts.auth import require_staff
from trends_gql.core import runs
from trends_gql.core.db import Database
from trends_gql.core.errors import BadUserInput, Forbidden, Unauthenticated, error_response
from trends_gql.core.models import ExportRun
from trends_gql.core.pagination import decode_id
from trends_gql.exports import runs as exports

log = logging.getLogger(__name__)

NOT_FOUND = "no finished export with this id"


async def download_export(request: Request) -> Response:
    """GET /exports/{id}: the file of a finished export, as an attachment, to staff only."""
    db: Database = request.app.state.db
    try:
        user = require_staff(request, "download exports")
    except (Unauthenticated, Forbidden) as exc:
        status = 401 if isinstance(exc, Unauthenticated) else 403
        return error_response(status, str(exc), exc.code)
    try:
        run_id = decode_id(request.path_params["id"], "ExportRun")
    except BadUserInput:
        return error_response(404, NOT_FOUND, "NOT_FOUND")
    run = await db.read(runs.get_run, ExportRun, run_id)
    path = exports.download_path(run)
    if run is None or path is None:
        return error_response(404, NOT_FOUND, "NOT_FOUND")
    log.info("export run %d downloaded by %s", run_id, user.email)
    return FileResponse(
        path,
        media_type=exports.MEDIA_TYPES[run.format],
        filename=path.name,
        headers={"Cache-Control": "private, no-store"},
    )
