"""GET /dni.js: the script for customers' pages, cached briefly and revalidated by its ETag."""

from __future__ import annotations

import gzip
import hashlib

from starlette.testclient import TestClient

from phonewagon_server.dni.script import SCRIPT_PATH


def test_the_script_is_served_as_javascript_for_any_site_to_load(api: TestClient) -> None:
    response = api.get("/dni.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.content == SCRIPT_PATH.read_bytes()
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in response.headers.get_list("cache-control")
    assert "content-encoding" not in response.headers


def test_its_etag_is_strong_and_the_hash_of_its_bytes(api: TestClient) -> None:
    etag = api.get("/dni.js").headers["etag"]
    assert not etag.startswith("W/")
    assert etag.strip('"') == hashlib.sha256(SCRIPT_PATH.read_bytes()).hexdigest()[:32]


def test_a_browser_holding_the_script_gets_304_without_a_body(api: TestClient) -> None:
    etag = api.get("/dni.js").headers["etag"]
    for held in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        response = api.get("/dni.js", headers={"If-None-Match": held})
        assert response.status_code == 304, held
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "public, max-age=300"
    changed = api.get("/dni.js", headers={"If-None-Match": '"an-older-version"'})
    assert changed.status_code == 200


def test_it_is_gzipped_for_a_browser_that_takes_gzip(api: TestClient) -> None:
    for accept in ("gzip, deflate, br, zstd", "gzip", "*"):
        with api.stream("GET", "/dni.js", headers={"Accept-Encoding": accept}) as response:
            raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip", accept
        assert response.headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(raw) == SCRIPT_PATH.read_bytes()
    with api.stream("GET", "/dni.js", headers={"Accept-Encoding": "br, zstd"}) as response:
        assert "content-encoding" not in response.headers


def test_head_answers_the_headers_alone(api: TestClient) -> None:
    response = api.head("/dni.js")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["etag"]
