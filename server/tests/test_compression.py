"""Content-Encoding: zstd or gzip as the client offers, the same JSON underneath, small bodies
as they are."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard
from starlette.testclient import TestClient

from phonewagon_server.api.encoding import compress, negotiate
from server_testkit import NOW_MS, Tenant, World


def _raw(
    api: TestClient, path: str, tenant: Tenant, accept: str, *, status: int = 200
) -> tuple[dict[str, str], bytes]:
    headers = {"Accept-Encoding": accept}
    with api.stream("GET", path, auth=tenant.auth, headers=headers) as response:
        assert response.status_code == status
        return dict(response.headers), b"".join(response.iter_raw())


@pytest.fixture
def busy(world: World, tenant: Tenant) -> Tenant:
    world.calls(tenant, [NOW_MS - n * 1000 for n in range(50)])
    return tenant


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip, zstd;q=0.5", "gzip"),
        ("GZIP;Q=0.9, *;q=0.1", "gzip"),
        ("*", "zstd"),
        ("zstd;q=0, *", "gzip"),
        ("br", None),
        ("identity", None),
        ("gzip;q=0, zstd;q=0", None),
        ("gzip;q=nonsense", None),
        ("gzip;q=2", None),
        ("", None),
    ],
)
def test_a_page_is_encoded_as_negotiated(
    api: TestClient, busy: Tenant, accept: str, coding: str | None
) -> None:
    """The best coding both sides know, zstd first on a tie; the decoded bytes are the page."""
    _, plain = _raw(api, "/calls", busy, "identity")
    headers, raw = _raw(api, "/calls", busy, accept)
    assert headers.get("content-encoding") == coding
    assert headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(raw)
    if coding == "gzip":
        assert gzip.decompress(raw) == plain
    elif coding == "zstd":
        assert zstandard.ZstdDecompressor().decompressobj().decompress(raw) == plain
    else:
        assert raw == plain
    if coding is not None:
        assert len(raw) < len(plain) / 3


def test_small_answers_go_as_they_are(api: TestClient, tenant: Tenant) -> None:
    """A body under 1 KB is not worth compressing: no Content-Encoding, no Vary."""
    headers, raw = _raw(api, "/companies", tenant, "gzip, zstd")
    assert "content-encoding" not in headers
    assert raw.startswith(b'{"companies":[')


def test_the_client_library_reads_compressed_pages(api: TestClient, busy: Tenant) -> None:
    """httpx, as the client library uses it, offers zstd and decodes it transparently."""
    response = api.get("/calls", auth=busy.auth)
    assert response.headers["content-encoding"] == "zstd"
    assert len(response.json()["calls"]) == 50


def test_errors_are_never_compressed_into_garbage(api: TestClient, tenant: Tenant) -> None:
    """A 400 answer is small problem+json, readable as it is."""
    headers, raw = _raw(api, "/calls?page_size=x", tenant, "gzip", status=400)
    assert "content-encoding" not in headers
    assert raw.startswith(b'{"type":')


def test_negotiation_reads_q_values_like_rfc_9110() -> None:
    """Weights decide, a wildcard covers codings not named, unreadable weights offer nothing."""
    assert negotiate("gzip;q=0.8, zstd;q=0.9") == "zstd"
    assert negotiate("gzip ; q=1.0 , zstd ; q=0.2") == "gzip"
    assert negotiate("*;q=0") is None
    assert negotiate(",,,;;;") is None


def test_threads_compressing_at_once_never_mix_their_frames() -> None:
    """Pages are compressed in the thread pool: each body decodes to itself, whatever runs
    beside it."""
    bodies = [bytes([65 + n % 26]) * (200_000 + n * 997) for n in range(64)]

    def round_trip(body: bytes) -> bool:
        decoder = zstandard.ZstdDecompressor()
        return all(
            decoder.decompressobj().decompress(compress(body, "zstd")) == body
            and gzip.decompress(compress(body, "gzip")) == body
            for _ in range(5)
        )

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(round_trip, bodies))
