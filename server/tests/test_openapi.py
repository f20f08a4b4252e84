"""The OpenAPI document and the docs page: valid, true to the code, and safe to render."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from openapi_spec_validator import validate
from starlette.exceptions import HTTPException
from starlette.requests import Request

from phonewagon_server import errors, models
from phonewagon_server.api import calls, problems
from phonewagon_server.api.app import api_routes
from phonewagon_server.api.openapi import build_openapi, render_docs
from phonewagon_server.api.routing import Auth, endpoint

PUBLIC_URL = "https://api.example.com"
API_PATHS = ("/companies", "/campaigns", "/calls")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_openapi(PUBLIC_URL, api_routes())


@pytest.fixture(scope="module")
def docs(spec: dict[str, Any]) -> str:
    return render_docs(spec)


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    _, _, kind, name = node["$ref"].split("/")
    resolved: dict[str, Any] = spec["components"][kind][name]
    return resolved


def _responses(spec: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    responses = spec["paths"][path]["get"]["responses"]
    return {status: _resolve(spec, response) for status, response in responses.items()}


def _example(response: dict[str, Any]) -> Any:
    (media,) = response["content"].values()
    return media["examples"]["example"]["value"]


def _request() -> Request:
    """A bare request whose app carries just what `api.problems` reads: the public URL."""
    settings = SimpleNamespace(public_url=PUBLIC_URL)
    app = SimpleNamespace(state=SimpleNamespace(context=SimpleNamespace(settings=settings)))
    scope = {"type": "http", "method": "PUT", "path": "/nowhere", "headers": [], "app": app}
    return Request(scope)


def _server_problem_types() -> set[str]:
    """The `type` URIs the server can answer with: domain errors, Starlette's 404/405, bugs."""
    domain: set[type[errors.PhonewagonError]] = {errors.PhonewagonError}
    pending = [errors.PhonewagonError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            domain.add(subclass)
            pending.append(subclass)
    types = {f"{PUBLIC_URL}/docs#problem-{error.slug}" for error in domain}
    rendered = [
        problems.render_http_error(_request(), HTTPException(404)),
        problems.render_http_error(_request(), HTTPException(405, headers={"Allow": "GET"})),
        problems.render_unexpected_error(_request(), RuntimeError("boom")),
        *(problems.render_refusal(_request(), status, "too big") for status in (413, 414, 431)),
    ]
    return types | {json.loads(bytes(response.body))["type"] for response in rendered}


def test_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    """The document passes openapi-spec-validator as OpenAPI 3.1.0."""
    assert spec["openapi"] == "3.1.0"
    validate(spec)


def test_server_is_the_public_url(spec: dict[str, Any]) -> None:
    """The only server is the configured public base URL."""
    assert spec["servers"] == [{"url": PUBLIC_URL}]


def test_basic_auth_guards_the_api_but_not_health(spec: dict[str, Any]) -> None:
    """Basic auth is the default, and each operation says so; /healthz and /readyz need none."""
    scheme = spec["components"]["securitySchemes"]["basicAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "basic")
    assert spec["security"] == [{"basicAuth": []}]
    for path in API_PATHS:
        assert spec["paths"][path]["get"]["security"] == [{"basicAuth": []}]
    for path in ("/healthz", "/readyz"):
        assert spec["paths"][path]["get"]["security"] == []


def test_an_operation_is_secured_as_its_route_declares() -> None:
    """Declared public, /calls would be documented without credentials: security is not typed
    by hand per path."""
    routes = [
        endpoint(r.path, r.endpoint, auth=Auth.PUBLIC) if r.path == "/calls" else r
        for r in api_routes()
    ]
    spec = build_openapi(PUBLIC_URL, routes)
    assert spec["paths"]["/calls"]["get"]["security"] == []
    assert spec["paths"]["/companies"]["get"]["security"] == [{"basicAuth": []}]


def test_the_routes_in_the_schema_and_the_documented_paths_must_agree() -> None:
    """A new route in the schema must be described, and a description must have its route; a
    route left out of the schema need not be described."""
    handler = api_routes()[0].endpoint
    hidden = endpoint("/hidden", handler, auth=Auth.PUBLIC, include_in_schema=False)
    assert "/hidden" not in build_openapi(PUBLIC_URL, [*api_routes(), hidden])["paths"]
    with pytest.raises(LookupError, match="/new"):
        build_openapi(PUBLIC_URL, [*api_routes(), endpoint("/new", handler, auth=Auth.PUBLIC)])
    with pytest.raises(LookupError, match="/calls"):
        build_openapi(PUBLIC_URL, [r for r in api_routes() if r.path != "/calls"])


def test_every_operation_is_a_get(spec: dict[str, Any]) -> None:
    """The API only reads: one GET per documented path."""
    assert set(spec["paths"]) == {*API_PATHS, "/healthz", "/readyz"}
    for item in spec["paths"].values():
        assert list(item) == ["get"]


def test_call_schema_has_every_call_field_with_its_type(spec: dict[str, Any]) -> None:
    """Call lists exactly models.CALL_FIELDS, all required, typed like the seed's example."""
    call = spec["components"]["schemas"]["Call"]
    assert list(call["properties"]) == list(models.CALL_FIELDS)
    assert call["required"] == list(models.CALL_FIELDS)
    assert call["additionalProperties"] is False
    types = {name: schema["type"] for name, schema in call["properties"].items()}
    assert {name for name, kind in types.items() if kind == "integer"} == {
        "id",
        "account_id",
        "company_id",
        "duration",
        "start_time",
        "updated_at",
    }
    assert {name for name, kind in types.items() if kind == "boolean"} == {"is_first_time_caller"}
    assert set(types.values()) == {"integer", "boolean", "string"}


def test_call_example_matches_the_call_schema(spec: dict[str, Any]) -> None:
    """The example call has every field, each of its schema type."""
    (call,) = _example(_responses(spec, "/calls")["200"])["calls"]
    python_types = {"integer": int, "boolean": bool, "string": str}
    properties = spec["components"]["schemas"]["Call"]["properties"]
    assert set(call) == set(properties)
    for name, value in call.items():
        assert type(value) is python_types[properties[name]["type"]], name


def test_query_parameters_are_those_the_server_accepts(spec: dict[str, Any]) -> None:
    """Each endpoint documents exactly the parameters its handler parses, none required."""
    accepted = {"/companies": [], "/campaigns": ["company_id"], "/calls": list(calls.PARAMETERS)}
    for path, names in accepted.items():
        parameters = [_resolve(spec, p) for p in spec["paths"][path]["get"]["parameters"]]
        assert [p["name"] for p in parameters] == names
        assert all(p["in"] == "query" and not p.get("required") for p in parameters)


def test_calls_parameters_document_bounds_and_defaults(spec: dict[str, Any]) -> None:
    """Integers are non-negative; page_size starts at 1 and defaults to 1000; start_time to 0."""
    schemas = {name: p["schema"] for name, p in spec["components"]["parameters"].items()}
    assert schemas["company_id"]["type"] == "integer"
    assert schemas["campaign_id"]["type"] == "string"
    assert schemas["start_time"]["default"] == 0
    assert "default" not in schemas["end_time"]  # now, which a constant cannot say
    assert schemas["page_size"]["minimum"] == 1
    assert "maximum" not in schemas["page_size"]  # larger values are truncated, not refused
    assert schemas["page_size"]["default"] == models.MAX_PAGE_SIZE == 1000
    for name in ("company_id", "start_time", "end_time", "before_id"):
        assert schemas[name]["minimum"] == 0


@pytest.mark.parametrize("name", list(calls.PARAMETERS))
def test_calls_parameter_bounds_are_those_the_server_enforces(
    spec: dict[str, Any], name: str
) -> None:
    """A value at each documented bound is accepted; one step beyond it is refused."""
    schema, parse = spec["components"]["parameters"][name]["schema"], calls.PARAMETERS[name]
    if schema["type"] == "string":
        parse("s" * schema["maxLength"])
        for refused in ("s" * (schema["minLength"] - 1), "s" * (schema["maxLength"] + 1)):
            with pytest.raises(ValueError, match=r"^must "):
                parse(refused)
        return
    assert parse(str(schema["minimum"])) == schema["minimum"]
    with pytest.raises(ValueError, match=r"^must "):
        parse(str(schema["minimum"] - 1))
    if "maximum" in schema:
        assert parse(str(schema["maximum"])) == schema["maximum"]
        with pytest.raises(ValueError, match=r"^must "):
            parse(str(schema["maximum"] + 1))
    else:
        assert parse("9" * 40) == models.MAX_PAGE_SIZE


def test_next_example_is_an_absolute_link_that_keeps_the_filter(spec: dict[str, Any]) -> None:
    """The example `next` is built by the server's own next_link: absolute, with the cursor."""
    page = _example(_responses(spec, "/calls")["200"])
    link = urlsplit(page["next"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{PUBLIC_URL}/calls"
    assert dict(parse_qsl(link.query)) == {
        "campaign_id": "s2212",
        "page_size": "1",
        "start_time": "0",
        "end_time": str(page["calls"][-1]["start_time"]),
        "before_id": str(page["calls"][-1]["id"]),
    }
    assert spec["components"]["schemas"]["CallsPage"]["required"] == ["calls"]


@pytest.mark.parametrize("path", API_PATHS)
def test_authenticated_responses_document_rate_limit_headers(
    spec: dict[str, Any], path: str
) -> None:
    """200s carry RateLimit-Policy, RateLimit and Cache-Control; 429 and 503 carry Retry-After."""
    responses = _responses(spec, path)
    ok = responses["200"]["headers"]
    assert ok["RateLimit-Policy"]["example"] == '"default";q=50;w=60'
    assert ok["RateLimit"]["example"] == '"default";r=49;t=30'
    assert ok["Cache-Control"]["example"] == "no-store"
    assert responses["400"]["content"].keys() == {"application/problem+json"}
    assert "WWW-Authenticate" in responses["401"]["headers"]
    for status in ("429", "503"):
        assert responses[status]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert ("404" in responses) == (path != "/companies")


def test_every_response_documents_cache_control(spec: dict[str, Any]) -> None:
    """Cache-Control: no-store is documented on every response, errors included."""
    for path in spec["paths"]:
        for response in _responses(spec, path).values():
            assert response["headers"]["Cache-Control"]["required"] is True


def test_problem_examples_are_what_the_server_renders(spec: dict[str, Any]) -> None:
    """Each error example has the shape, type URI and title the server uses for its status."""
    types = _server_problem_types()
    for response in spec["components"]["responses"].values():
        problem = _example(response)
        assert problem["type"] in types
        assert {"type", "title", "status", "detail"} <= set(problem)
    invalid = _example(spec["components"]["responses"]["InvalidParameters"])
    assert invalid["errors"][0]["name"] == "compnay_id"


def test_every_server_problem_type_is_anchored_in_the_docs(docs: str) -> None:
    """Each `type` URI the server can answer with points at an anchor of the docs page."""
    types = _server_problem_types()
    slugs = {t.removeprefix(f"{PUBLIC_URL}/docs#problem-") for t in types if t != "about:blank"}
    assert slugs >= {
        "invalid-parameters",
        "unauthenticated",
        "not-found",
        "method-not-allowed",
        "rate-limited",
        "internal-error",
        "database-unavailable",
    }
    for slug in slugs:
        assert f'id="problem-{slug}"' in docs


def test_docs_links_resolve_to_anchors_on_the_page(docs: str) -> None:
    """Every in-page link points at an id that exists."""
    ids = set(re.findall(r'id="([^"]+)"', docs))
    assert set(re.findall(r'href="#([^"]+)"', docs)) <= ids


def test_docs_cover_auth_rate_limit_endpoints_and_pagination(docs: str) -> None:
    """The page shows the curl auth line, the rate-limit headers, each endpoint and `next`."""
    assert f"curl -u client-id:client-secret &quot;{PUBLIC_URL}/companies&quot;" in docs
    for text in ("RateLimit-Policy", "Retry-After", "before_id", "Jake&#x27;s rake company"):
        assert text in docs
    for path in (*API_PATHS, "/healthz", "/readyz"):
        assert f"GET {path}</h3>" in docs


def test_docs_are_self_contained(docs: str) -> None:
    """No script, stylesheet, font or image is fetched from anywhere."""
    assert "<script" not in docs
    assert "<link" not in docs
    assert "@import" not in docs
    assert not re.search(r"src=|url\(", docs)


def test_docs_escape_what_they_show() -> None:
    """A public URL with markup in it is shown as text, never as markup."""
    hostile = "https://evil.example/<script>alert(1)</script>"
    docs = render_docs(build_openapi(hostile, api_routes()))
    assert "<script>" not in docs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in docs


def test_error_examples_carry_the_status_they_are_documented_under(spec: dict[str, Any]) -> None:
    """An operation's 404 response is a problem whose `status` is 404, and so on."""
    for path in spec["paths"]:
        for status, response in _responses(spec, path).items():
            if status != "200":
                assert _example(response)["status"] == HTTPStatus(int(status))
