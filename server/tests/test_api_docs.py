"""The API describes itself: `/openapi.json` for tools, `/docs` for people, without credentials."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

import live_kit
from phonewagon_server.api import create_app, openapi
from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.twilio.simulator import tone_wav
from server_testkit import PUBLIC_URL, FakeClock, Tenant, World

WEBHOOKS = ("/twilio/voice", "/twilio/status", "/twilio/recording")
RECORDING = "/call-recordings/{sid}/file"


def test_openapi_json_is_served_with_the_public_url(api: TestClient) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    assert spec["servers"] == [{"url": PUBLIC_URL}]
    assert {"/companies", "/campaigns", "/calls"} <= set(spec["paths"])


def test_docs_are_a_self_contained_html_page(api: TestClient) -> None:
    response = api.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/calls" in response.text
    assert "<script src=" not in response.text


# The documented webhooks and recording route, exercised against a deployment whose Twilio
# account, tracking number and recording are those of the documented examples.
AUTH_TOKEN = live_kit.AUTH_TOKEN
UNKNOWN = "+18445550199"


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
def twilio_api(
    database: Database, settings: Settings, clock: FakeClock, tenant: Tenant, recordings: Path
) -> Iterator[TestClient]:
    live = replace(
        settings,
        twilio_account_sid=openapi.TWILIO_ACCOUNT,
        twilio_auth_tokens=(AUTH_TOKEN,),
        recordings_dir=recordings,
    )
    live_kit.add_number(database, tenant, openapi.VOICE_EXAMPLE["To"])
    app = create_app(live, database, wall_clock=clock, monotonic=clock, background=False)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def _documented(api: TestClient) -> dict[str, Any]:
    spec: dict[str, Any] = api.get("/openapi.json").json()
    return spec


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    _, _, kind, name = node["$ref"].split("/")
    resolved: dict[str, Any] = spec["components"][kind][name]
    return resolved


def _examples(response: dict[str, Any]) -> dict[str, Any]:
    (media,) = response["content"].values()
    return {name: example["value"] for name, example in media["examples"].items()}


def assert_as_documented(spec: dict[str, Any], path: str, response: httpx.Response) -> None:
    """The answer's status is documented for `path`, with its media type and required headers;
    a problem is one of the documented ones for that status."""
    (operation,) = spec["paths"][path].values()
    status = str(response.status_code)
    assert status in operation["responses"], (path, status)
    documented = _resolve(spec, operation["responses"][status])
    media = response.headers["content-type"].split(";")[0]
    assert media in documented["content"], (path, status, media)
    for name, header in documented["headers"].items():
        assert not header["required"] or name.lower() in response.headers, (path, status, name)
    if media == "application/problem+json":
        types = {problem["type"] for problem in _examples(documented).values()}
        assert response.json()["type"] in types


def _post(
    api: TestClient, path: str, fields: dict[str, Any], *, token: str = AUTH_TOKEN
) -> httpx.Response:
    """`fields` posted to `path` as Twilio posts them, signed by Twilio's own library."""
    form = {name: str(value) for name, value in fields.items()}
    signature = RequestValidator(token).compute_signature(PUBLIC_URL + path, form)
    return api.post(path, data=form, headers={"X-Twilio-Signature": signature})


def _form_example(spec: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (media,) = spec["paths"][path]["post"]["requestBody"]["content"].values()
    return _resolve(spec, media["schema"]), media["examples"]["example"]["value"]


def test_openapi_json_documents_the_webhooks_and_the_recording_route(api: TestClient) -> None:
    spec = _documented(api)
    for path in WEBHOOKS:
        assert spec["paths"][path]["post"]["security"] == [{"twilioSignature": []}]
    assert spec["paths"][RECORDING]["get"]["security"] == [{"basicAuth": []}]
    page = api.get("/docs").text
    for heading in (*(f"POST {path}</h3>" for path in WEBHOOKS), f"GET {RECORDING}</h3>"):
        assert heading in page


def test_the_documented_webhooks_are_answered_with_the_documented_twiml(
    twilio_api: TestClient,
) -> None:
    spec = _documented(twilio_api)
    for path in WEBHOOKS:
        _, example = _form_example(spec, path)
        response = _post(twilio_api, path, example)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/xml; charset=utf-8"
        assert_as_documented(spec, path, response)
        answers = _examples(spec["paths"][path]["post"]["responses"]["200"])
        expected = answers["forward"] if path == "/twilio/voice" else answers["example"]
        assert response.text == expected


def test_a_call_to_an_unknown_number_gets_the_documented_decline(
    twilio_api: TestClient,
) -> None:
    spec = _documented(twilio_api)
    _, example = _form_example(spec, "/twilio/voice")
    response = _post(twilio_api, "/twilio/voice", example | {"To": UNKNOWN})
    assert response.status_code == 200
    voice = spec["paths"]["/twilio/voice"]["post"]["responses"]["200"]
    assert response.text == _examples(voice)["unknown_number"]


def test_fields_twilio_adds_are_ignored_as_documented(twilio_api: TestClient) -> None:
    spec = _documented(twilio_api)
    schema, example = _form_example(spec, "/twilio/status")
    assert schema["additionalProperties"] is True
    added = {"ApiVersion": "2010-04-01", "CallbackSource": "call-progress-events", "X": "<&>"}
    response = _post(twilio_api, "/twilio/status", example | added)
    assert response.status_code == 200


@pytest.mark.parametrize("path", WEBHOOKS)
def test_a_webhook_without_a_required_field_is_refused_naming_it(
    twilio_api: TestClient, path: str
) -> None:
    spec = _documented(twilio_api)
    schema, example = _form_example(spec, path)
    for name in schema["required"]:
        response = _post(twilio_api, path, {k: v for k, v in example.items() if k != name})
        assert response.status_code == 400
        assert response.json()["detail"] == f"The field {name} is missing."
        assert_as_documented(spec, path, response)


def test_refused_webhooks_get_the_documented_problems(twilio_api: TestClient) -> None:
    spec = _documented(twilio_api)
    _, example = _form_example(spec, "/twilio/voice")
    form = {name: str(value) for name, value in example.items()}
    refused = {
        403: [
            twilio_api.post("/twilio/voice", data=form),
            _post(twilio_api, "/twilio/voice", example, token="0" * 32),
        ],
        400: [
            twilio_api.post("/twilio/voice", json=form),
            twilio_api.post(
                "/twilio/voice",
                content=b"\xff=1",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
        ],
        413: [twilio_api.post("/twilio/voice", data={"x": "y" * 70_000})],
    }
    for status, responses in refused.items():
        for response in responses:
            assert response.status_code == status, response.text
            assert_as_documented(spec, "/twilio/voice", response)


def test_the_recording_route_answers_as_documented(
    twilio_api: TestClient, tenant: Tenant, world: World, database: Database, recordings: Path
) -> None:
    spec = _documented(twilio_api)
    sid = openapi.CALL_EXAMPLE["sid"]
    stored = recordings / sid / f"{openapi.RECORDING_SID}.wav"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(tone_wav(seconds=0.5))
    with database.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO call_recordings (account_id, call_sid, recording_sid, stored_as,"
            " content_type, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tenant.account_id, sid, openapi.RECORDING_SID, f"{sid}/{stored.name}",
             "audio/x-wav", stored.stat().st_size, 0),
        )  # fmt: skip
    url = f"/call-recordings/{sid}/file"
    other = world.tenant("Another Agency")
    answers = {
        200: twilio_api.get(url, auth=tenant.auth),
        206: twilio_api.get(url, auth=tenant.auth, headers={"Range": "bytes=0-99"}),
        401: twilio_api.get(url),
        404: twilio_api.get(url, auth=other.auth),
    }
    for status, response in answers.items():
        assert response.status_code == status
        assert_as_documented(spec, RECORDING, response)
    assert answers[200].content == stored.read_bytes()
    assert answers[206].content == stored.read_bytes()[:100]
