"""Routes of fixed paths found by dictionary answer as Starlette's own router would."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from phonewagon_server.api.dispatch import FixedPathRouter, fixed_paths


def named(path: str, name: str, methods: list[str] | None = None) -> Route:
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} {request.path_params}")

    return Route(path, endpoint, methods=methods)


ROUTES = [
    named("/calls", "calls"),
    named("/items/{item}", "item"),
    named("/items/new", "new item"),  # after a pattern that takes it: never reached
    named("/twilio/voice", "voice form", methods=["POST"]),
    named("/twilio/voice", "voice page", methods=["GET"]),
    named("/dni/visits", "visit", methods=["POST"]),
    Mount("/static", routes=[named("/x", "static")]),
    named("/static/y", "after a mount"),  # the mount takes /static/... first
]


@pytest.mark.parametrize("router", ["starlette", "fixed"])
@pytest.mark.parametrize(
    ("method", "path", "status", "text"),
    [
        ("GET", "/calls", 200, "calls {}"),
        ("GET", "/items/new", 200, "item {'item': 'new'}"),
        ("GET", "/items/7", 200, "item {'item': '7'}"),
        ("POST", "/twilio/voice", 200, "voice form {}"),
        ("GET", "/twilio/voice", 200, "voice page {}"),
        ("POST", "/dni/visits", 200, "visit {}"),
        ("GET", "/dni/visits", 405, "Method Not Allowed"),
        ("GET", "/static/x", 200, "static {}"),
        ("GET", "/static/y", 404, "Not Found"),
        ("GET", "/nowhere", 404, "Not Found"),
    ],
)
def test_each_request_gets_the_answer_of_starlettes_router(
    router: str, method: str, path: str, status: int, text: str
) -> None:
    app = Starlette(routes=ROUTES)
    if router == "fixed":
        app.router = FixedPathRouter(ROUTES)
    response = TestClient(app).request(method, path)
    assert (response.status_code, response.text) == (status, text)


def test_only_paths_no_earlier_route_could_take_are_found_by_dictionary() -> None:
    assert sorted(fixed_paths(ROUTES)) == ["/calls", "/dni/visits", "/twilio/voice"]
