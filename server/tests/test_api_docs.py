"""The API describes itself: `/openapi.json` for tools, `/docs` for people, without credentials."""

from __future__ import annotations

from starlette.testclient import TestClient

from server_testkit import PUBLIC_URL


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
