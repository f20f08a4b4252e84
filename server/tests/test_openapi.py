"""The OpenAPI document and the docs page: valid, true to the code, and safe to render."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from starlette.exceptions import HTTPException
from starlette.requests import Request

from phonewagon_server import errors, models
from phonewagon_server.api import calls, openapi, problems
from phonewagon_server.api.app import api_routes
from phonewagon_server.api.openapi import build_openapi, render_docs
from phonewagon_server.api.routing import Auth, Body, endpoint
from phonewagon_server.twilio import events, webhooks

PUBLIC_URL = "https://api.example.com"
API_PATHS = ("/companies", "/campaigns", "/calls")
RECORDING = "/call-recordings/{sid}/file"
WEBHOOKS = ("/twilio/voice", "/twilio/status", "/twilio/recording")
FORM = "application/x-www-form-urlencoded"


SPEC = build_openapi(PUBLIC_URL, api_routes())


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


def _operation(spec: dict[str, Any], path: str) -> dict[str, Any]:
    """The one operation documented at `path`."""
    (operation,) = spec["paths"][path].values()
    return operation  # type: ignore[no-any-return]


def _responses(spec: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    responses = _operation(spec, path)["responses"]
    return {status: _resolve(spec, response) for status, response in responses.items()}


def _examples(response: dict[str, Any]) -> list[Any]:
    """The values of a response's examples, over all its media types."""
    content = response.get("content", {}).values()
    return [example["value"] for media in content for example in media.get("examples", {}).values()]


def _example(response: dict[str, Any]) -> Any:
    (value,) = _examples(response)
    return value


def _problems(response: dict[str, Any]) -> list[dict[str, Any]]:
    return _examples(response) if "application/problem+json" in response["content"] else []


def _form(spec: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A webhook's form schema and its example."""
    (media,) = _operation(spec, path)["requestBody"]["content"].values()
    return _resolve(spec, media["schema"]), media["examples"]["example"]["value"]


def _read_as_handler(path: str, fields: Mapping[str, str]) -> None:
    """What the handler of webhook `path` reads of its fields, checked as it checks them."""
    events.account_sid(fields, openapi.TWILIO_ACCOUNT)
    if path == "/twilio/recording":
        prefix = f"https://api.twilio.com/2010-04-01/Accounts/{openapi.TWILIO_ACCOUNT}/"
        events.recording_event(fields, allowed_prefix=prefix)
    else:
        kind: events.EventKind = "voice" if path == "/twilio/voice" else "status"
        events.call_event(kind, fields, received_at=0)


class ReadFields(dict[str, str]):
    """A form that remembers which of its fields were read."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__(fields)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def _as_form(example: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in example.items()}


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


def test_the_api_only_reads_and_the_webhooks_only_post(spec: dict[str, Any]) -> None:
    """One GET per API path, one POST per webhook: the methods each route answers (HEAD aside)."""
    assert set(spec["paths"]) == {*API_PATHS, RECORDING, "/healthz", "/readyz", *WEBHOOKS}
    routes = {route.path: route for route in api_routes()}
    for path, item in spec["paths"].items():
        assert list(item) == (["post"] if path in WEBHOOKS else ["get"]), path
        assert {method.upper() for method in item} == (routes[path].methods or set()) - {"HEAD"}


def test_a_documented_method_must_be_the_routes() -> None:
    """A webhook routed for GET, or an API path routed for POST, is not documented as it was."""
    moved = [
        endpoint(r.path, r.endpoint, auth=Auth.PUBLIC, methods=("POST",))
        if r.path == "/companies"
        else r
        for r in api_routes()
    ]
    with pytest.raises(LookupError, match="/companies is routed for"):
        build_openapi(PUBLIC_URL, moved)


def test_webhooks_are_documented_as_signed_form_posts_answered_with_twiml(
    spec: dict[str, Any],
) -> None:
    """Each webhook: X-Twilio-Signature, a form of open fields, TwiML or a problem in answer."""
    scheme = spec["components"]["securitySchemes"]["twilioSignature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == (
        "apiKey",
        "header",
        "X-Twilio-Signature",
    )
    for path in WEBHOOKS:
        operation = _operation(spec, path)
        assert operation["security"] == [{"twilioSignature": []}]
        assert operation["requestBody"]["required"] is True
        assert list(operation["requestBody"]["content"]) == [FORM]
        schema, _ = _form(spec, path)
        assert schema["additionalProperties"] is True  # Twilio adds fields without notice
        responses = _responses(spec, path)
        assert set(responses) == {"200", "400", "403", "413", "414", "429", "431", "503"}
        assert list(responses["200"]["content"]) == ["text/xml"]
        for twiml in _examples(responses["200"]):
            assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Response')
        for status in ("400", "403", "413", "429", "503"):
            assert list(responses[status]["content"]) == ["application/problem+json"]
        slugs = {
            problem["type"].rpartition("#problem-")[2] for problem in _problems(responses["400"])
        }
        assert slugs == {"invalid-field", "unreadable-body"}
        assert _example(responses["403"])["type"].endswith("#problem-forbidden")
        assert _example(responses["413"])["type"].endswith("#problem-payload-too-large")
        assert "Retry-After" in responses["429"]["headers"]
        assert "401" not in responses


def test_voice_examples_are_the_servers_twiml(spec: dict[str, Any]) -> None:
    """The voice webhook's answers are the server's forward and decline documents."""
    answers = _examples(_responses(spec, "/twilio/voice")["200"])
    assert any(f'recordingStatusCallback="{PUBLIC_URL}/twilio/recording"' in a for a in answers)
    assert any(webhooks.UNKNOWN_NUMBER in a and "<Hangup />" in a for a in answers)
    for path in ("/twilio/status", "/twilio/recording"):
        assert _example(_responses(spec, path)["200"]).endswith("<Response />")


@pytest.mark.parametrize("path", WEBHOOKS)
def test_webhook_forms_document_exactly_the_fields_the_server_reads(
    spec: dict[str, Any], path: str
) -> None:
    """The documented fields are those the handler reads of the example, which it accepts."""
    schema, example = _form(spec, path)
    jsonschema.validate(example, schema)
    fields = ReadFields(_as_form(example))
    _read_as_handler(path, fields)
    assert fields.read == set(schema["properties"])
    assert set(schema["required"]) <= set(example)


@pytest.mark.parametrize("path", WEBHOOKS)
def test_each_required_webhook_field_is_refused_when_missing(
    spec: dict[str, Any], path: str
) -> None:
    """Without any one of its required fields, the example is refused, naming that field."""
    schema, example = _form(spec, path)
    for name in schema["required"]:
        fields = {k: v for k, v in _as_form(example).items() if k != name}
        with pytest.raises(events.BadWebhook) as refused:
            _read_as_handler(path, fields)
        assert refused.value.field == name


def _beyond(schema: dict[str, Any]) -> list[str]:
    """Values one step outside a documented field shape."""
    if "maximum" in schema:
        return [str(schema["maximum"] + 1), "-1", "1.5"]
    if "maxLength" in schema:
        return ["x" * (schema["maxLength"] + 1)]
    return ["x", ""] if "enum" in schema or "anyOf" in schema else ["x", "X" + "0" * 33]


def _within(schema: dict[str, Any]) -> list[str]:
    """Values at the documented bounds of a field shape."""
    if "maximum" in schema:
        return [str(schema["minimum"]), str(schema["maximum"])]
    if "maxLength" in schema:
        return ["x" * schema["maxLength"], ""]
    if "enum" in schema:
        return [str(value) for value in schema["enum"]]
    return []


@pytest.mark.parametrize("path", WEBHOOKS)
def test_webhook_field_bounds_are_those_the_server_enforces(
    spec: dict[str, Any], path: str
) -> None:
    """Each field at its documented bounds is accepted; one step beyond, refused naming it."""
    schema, example = _form(spec, path)
    for name, field in schema["properties"].items():
        if name in ("AccountSid", "RecordingUrl"):
            continue  # this deployment's account, under its API base: see the next test
        for value in _within(field):
            _read_as_handler(path, _as_form(example) | {name: value})
        for value in _beyond(field):
            with pytest.raises(events.BadWebhook) as refused:
                _read_as_handler(path, _as_form(example) | {name: value})
            assert refused.value.field == name, value


def test_account_and_recording_url_must_be_the_deployments(spec: dict[str, Any]) -> None:
    """Another account's webhook, or a recording outside the API base, is refused."""
    schema, example = _form(spec, "/twilio/recording")
    assert "PHONEWAGON_TWILIO_ACCOUNT_SID" in schema["properties"]["AccountSid"]["description"]
    assert "PHONEWAGON_TWILIO_API_BASE" in schema["properties"]["RecordingUrl"]["description"]
    other = "AC" + "0" * 32
    elsewhere = example["RecordingUrl"].replace("api.twilio.com", "evil.example")
    for name, value in (("AccountSid", other), ("RecordingUrl", elsewhere)):
        with pytest.raises(events.BadWebhook, match=name):
            _read_as_handler("/twilio/recording", _as_form(example) | {name: value})


@pytest.mark.parametrize(
    "field", ["AccountSid", "CallSid", "To", "RecordingSid", "From", "CallerName"]
)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_values_of_a_documented_shape_are_accepted(field: str, data: st.DataObject) -> None:
    """Any value the documented pattern matches is one the server takes."""
    path = "/twilio/recording" if field == "RecordingSid" else "/twilio/voice"
    schema, example = _form(SPEC, path)
    shape = schema["properties"][field]
    choices = shape.get("anyOf", [shape])
    choice = data.draw(st.sampled_from(choices))
    if "pattern" in choice:
        value = data.draw(st.from_regex(choice["pattern"].rstrip("$") + r"\Z"))
    else:
        printable = st.characters(categories=["L", "M", "N", "P", "S"], include_characters=" ")
        value = data.draw(st.text(printable, max_size=events.MAX_NAME_CHARS))
    if field == "AccountSid":
        with pytest.raises(events.BadWebhook, match="not this deployment's"):
            _read_as_handler(path, _as_form(example) | {field: value})
        return
    _read_as_handler(path, _as_form(example) | {field: value})


def test_recording_file_is_documented_as_audio_with_ranges(spec: dict[str, Any]) -> None:
    """The recording route: Basic auth, a `sid` in the path, audio whole or in part."""
    operation = _operation(spec, RECORDING)
    assert operation["security"] == [{"basicAuth": []}]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["sid"]["in"] == "path"
    assert parameters["sid"]["required"] is True
    assert parameters["Range"]["in"] == "header"
    responses = _responses(spec, RECORDING)
    assert {"200", "206", "401", "404", "429", "503"} <= set(responses)
    for status in ("200", "206"):
        content = responses[status]["content"]
        assert {"audio/x-wav", "audio/mpeg"} <= set(content)
        assert content["audio/mpeg"] == {"schema": {"type": "string", "format": "binary"}}
    assert responses["200"]["headers"]["Accept-Ranges"]["example"] == "bytes"
    assert "Content-Range" in responses["206"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]


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
        for problem in _problems(response):
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
        "invalid-field",
        "unreadable-body",
        "forbidden",
        "payload-too-large",
    }
    for slug in slugs:
        assert f'id="problem-{slug}"' in docs


def test_every_documented_problem_is_explained_in_the_docs(spec: dict[str, Any], docs: str) -> None:
    """Each problem example of each response has its heading, once."""
    for response in spec["components"]["responses"].values():
        for problem in _problems(response):
            anchor = problem["type"].rpartition("#problem-")[2]
            if problem["type"] == "about:blank":
                anchor = f"refused-{problem['status']}"
            else:
                anchor = f"problem-{anchor}"
            assert docs.count(f'id="{anchor}"') == 1, anchor


def test_docs_ids_are_unique(docs: str) -> None:
    """No two elements of the page share an id: every anchor leads to one place."""
    ids = re.findall(r'id="([^"]+)"', docs)
    assert len(ids) == len(set(ids))


def test_docs_links_resolve_to_anchors_on_the_page(docs: str) -> None:
    """Every in-page link points at an id that exists."""
    ids = set(re.findall(r'id="([^"]+)"', docs))
    assert set(re.findall(r'href="#([^"]+)"', docs)) <= ids


def test_docs_cover_auth_rate_limit_endpoints_and_pagination(docs: str) -> None:
    """The page shows the curl auth line, the rate-limit headers, each endpoint and `next`."""
    assert f"curl -u client-id:client-secret &quot;{PUBLIC_URL}/companies&quot;" in docs
    for text in ("RateLimit-Policy", "Retry-After", "before_id", "Jake&#x27;s rake company"):
        assert text in docs
    for path in (*API_PATHS, RECORDING, "/healthz", "/readyz"):
        assert f"GET {path}</h3>" in docs


def test_docs_show_every_operation_with_its_credentials_and_curl(
    spec: dict[str, Any], docs: str
) -> None:
    """Each operation has its heading, credentials line, curl sample and answers."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            heading = f"{method.upper()} {path}</h3>"
            assert docs.count(heading) == 1
            section = docs.split(heading)[1].split("<h3")[0]
            assert "<p>Credentials: " in section
            sample = operation["x-codeSamples"][0]["source"]
            assert html.escape(sample) in section
            for status in operation["responses"]:
                assert f"<strong>{status}</strong>" in section


def test_docs_show_the_webhooks_signed_curl_and_their_fields(
    spec: dict[str, Any], docs: str
) -> None:
    """A webhook's sample posts its form with a signature to fill in; its fields are listed."""
    section = docs.split('id="webhooks"')[1].split('id="errors"')[0]
    assert 'id="webhook-signature"' in section
    for path in WEBHOOKS:
        part = section.split(f"POST {path}</h3>")[1].split("<h3")[0]
        assert "-H &quot;X-Twilio-Signature: $SIGNATURE&quot;" in part
        assert f"curl &quot;{PUBLIC_URL}{path}&quot;" in part
        schema, example = _form(spec, path)
        for name, value in example.items():
            assert f"--data-urlencode &quot;{name}={html.escape(str(value))}&quot;" in part
        for name in schema["properties"]:
            assert f"<td><code>{name}</code></td>" in part


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
            for problem in _problems(response):
                assert problem["status"] == HTTPStatus(int(status))


def test_webhook_routes_take_a_form_and_the_others_none() -> None:
    """What the document says of request bodies is what the routes declare."""
    spec = build_openapi(PUBLIC_URL, api_routes())
    for route in api_routes():
        operation = _operation(spec, route.path)
        assert ("requestBody" in operation) == (route.policy.body is Body.FORM), route.path
