"""`/healthz` (the process answers) and `/readyz` (the database answers too)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.context import context_of
from phonewagon_server.api.responses import json_response


async def healthz(request: Request) -> Response:
    """Answered on the event loop: no worker thread needed, however busy they all are."""
    return json_response(request, {"status": "ok"})


def readyz(request: Request) -> Response:
    context_of(request).database.ping()  # raises DatabaseUnavailable: a 503 problem
    return json_response(request, {"status": "ready"})
