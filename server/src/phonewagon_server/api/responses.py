"""JSON responses rendered with orjson and compressed as negotiated; every API answer goes
through these."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.encoding import MIN_COMPRESSED_BYTES, compress, negotiate


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(
    request: Request, content: Any, *, status_code: int = 200, media_type: str | None = None
) -> Response:
    """A JSON answer carrying the rate-limit headers of the request's account, if any."""
    body = orjson.dumps(content)
    return rendered_json_response(request, body, status_code=status_code, media_type=media_type)


def rendered_json_response(
    request: Request, body: bytes, *, status_code: int = 200, media_type: str | None = None
) -> Response:
    """`json_response` for a body already rendered to JSON bytes."""
    headers: dict[str, str] = dict(getattr(request.state, "rate_limit_headers", {}))
    if len(body) >= MIN_COMPRESSED_BYTES:
        headers["Vary"] = "Accept-Encoding"
        coding = negotiate(request.headers.get("accept-encoding"))
        if coding is not None:
            body = compress(body, coding)
            headers["Content-Encoding"] = coding
    return Response(
        body,
        status_code=status_code,
        headers=headers,
        media_type=media_type or JSONResponse.media_type,
    )
