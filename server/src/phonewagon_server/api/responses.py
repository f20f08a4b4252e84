"""JSON responses rendered with orjson; every API answer goes through these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(
    request: Request, content: Any, *, status_code: int = 200, media_type: str | None = None
) -> Response:
    """A JSON answer carrying the rate-limit headers of the request's account, if any."""
    headers: Mapping[str, str] = getattr(request.state, "rate_limit_headers", {})
    return JSONResponse(content, status_code=status_code, headers=headers, media_type=media_type)
