"""`/call-recordings/<sid>/file`: a call's recording, to the account that owns the call."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from phonewagon_server.api.context import context_of
from phonewagon_server.api.params import parse_params
from phonewagon_server.errors import NotFound

CALL_SID_MAX_CHARS = 64


def _cache_buster(value: str) -> str:
    if not (value.isascii() and value.isdigit() and len(value) <= 32):
        raise ValueError("must be 1 to 32 digits")
    return value


# The seed's recording URLs end in `?cb=<epoch ms>`, a cache buster: taken, and ignored.
PARAMETERS = {"cb": _cache_buster}


def get_recording_file(request: Request, account_id: int) -> Response:
    """The audio, with range requests; 404 for a call of another account or without one."""
    parse_params(request, PARAMETERS)
    return recording_file(request, account_id, request.path_params["sid"])


def recording_file(request: Request, account_id: int, sid: str) -> Response:
    """The recording of the account's call `sid` (the API's route, and the web app's player)."""
    if len(sid) > CALL_SID_MAX_CHARS:
        raise NotFound("There is no recording of that call.")
    context = context_of(request)
    with context.database.transaction() as tx:
        row = tx.fetchone(
            "SELECT stored_as, content_type FROM call_recordings"
            " WHERE account_id = ? AND call_sid = ?",
            (account_id, sid),
        )
    path = context.settings.recordings_dir / row[0] if row else None
    if path is None or not path.is_file():
        raise NotFound("There is no recording of that call.")
    extension = path.suffix.lstrip(".")
    return FileResponse(
        path,
        media_type=row[1] if row else None,
        headers=dict(getattr(request.state, "rate_limit_headers", {})),
        filename=f"{sid}.{extension}",
        content_disposition_type="inline",
    )
