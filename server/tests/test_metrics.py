"""`/metrics` counts what the API answered and refused, with labels no client can multiply."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Rate, Settings
from phonewagon_server.db import Database, open_database
from phonewagon_server.errors import ConfigurationError
from server_testkit import FakeClock, Tenant, with_rate
from test_e2e_serve import Server, cli
from test_e2e_workers import REDIS_URL

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
WRONG = ("pwid_nosuchclient", "pwsk_wrong")


def scrape(client: TestClient | httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, route: str, status: int, method: str = "GET") -> float:
    labels = {"route": route, "method": method, "status": str(status)}
    return value(samples, "phonewagon_http_requests_total", **labels)


def test_requests_are_counted_by_route_template_method_and_status(
    api: TestClient, tenant: Tenant
) -> None:
    api.get("/companies", auth=tenant.auth)
    api.get("/companies", auth=tenant.auth)
    api.get("/calls?compnay_id=1", auth=tenant.auth)
    api.post("/calls", auth=tenant.auth)
    api.get(f"/accounts/{tenant.account_id}/secrets", auth=tenant.auth)
    samples = scrape(api)
    assert requests(samples, "/companies", 200) == 2
    assert requests(samples, "/calls", 400) == 1
    assert requests(samples, "/calls", 405, method="POST") == 1
    assert requests(samples, "unmatched", 404) == 1


def test_latency_is_observed_per_route(api: TestClient, tenant: Tenant) -> None:
    for _ in range(3):
        api.get("/calls", auth=tenant.auth)
    samples = scrape(api)
    count = value(samples, "phonewagon_http_request_duration_seconds_count", route="/calls")
    assert count == 3
    assert value(samples, "phonewagon_http_request_duration_seconds_sum", route="/calls") > 0
    slowest = {"route": "/calls", "le": "+Inf"}
    assert value(samples, "phonewagon_http_request_duration_seconds_bucket", **slowest) == 3


def test_the_scrape_itself_is_the_request_in_flight(api: TestClient) -> None:
    api.get("/healthz")
    assert value(scrape(api), "phonewagon_http_requests_in_flight") == 1


def test_account_refusals_and_auth_failures_are_counted_apart(
    database: Database, settings: Settings, tenant: Tenant, clock: FakeClock
) -> None:
    strict = replace(with_rate(settings, "2/minute"), auth_failure_limit=Rate.parse("2/minute"))
    with TestClient(create_app(strict, database, wall_clock=clock, monotonic=clock)) as api:
        account = [api.get("/companies", auth=tenant.auth).status_code for _ in range(3)]
        failing = [api.get("/companies", auth=WRONG).status_code for _ in range(3)]
        assert account == [200, 200, 429]
        assert failing == [401, 401, 429]
        samples = scrape(api)
    assert value(samples, "phonewagon_rate_limited_total", limit="account") == 1
    assert value(samples, "phonewagon_rate_limited_total", limit="auth_failure") == 1
    assert value(samples, "phonewagon_auth_failures_total") == 3


def test_an_unreachable_database_is_counted(tmp_path: Path, settings: Settings) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    database = open_database(f"sqlite:///{gone}/phonewagon.db")
    gone.rmdir()
    with TestClient(create_app(settings, database)) as api:
        assert api.get("/readyz").status_code == 503
        assert api.get("/companies", auth=WRONG).status_code == 503
        samples = scrape(api)
    database.close()
    assert value(samples, "phonewagon_database_errors_total") == 2
    assert requests(samples, "/readyz", 503) == 1


def test_labels_stay_bounded_whatever_clients_send(api: TestClient, tenant: Tenant) -> None:
    for n in range(30):
        api.get(f"/calls/{uuid.uuid4()}", auth=tenant.auth)
        api.request(f"FETCH{n}", "/calls", auth=tenant.auth)
        api.get(f"/calls?company_id={tenant.company.id}&n={n}", auth=tenant.auth)
    ours = {key: v for key, v in scrape(api).items() if key[0].startswith("phonewagon_")}
    labels = [dict(label_set) for _, label_set in ours]
    assert {name for label_set in labels for name in label_set} <= {
        "route", "method", "status", "le", "limit"
    }  # fmt: skip
    assert {label_set["route"] for label_set in labels if "route" in label_set} == {
        "/calls", "unmatched"
    }  # fmt: skip
    assert {label_set["method"] for label_set in labels if "method" in label_set} == {
        "GET",
        "other",
    }
    request_series = [key for key in ours if key[0] == "phonewagon_http_requests_total"]
    assert len(request_series) == 3  # GET /calls 400, FETCH* /calls 405, GET unmatched 404


def test_metrics_can_be_turned_off(database: Database, settings: Settings) -> None:
    with TestClient(create_app(replace(settings, metrics=False), database)) as api:
        response = api.get("/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_metrics_can_be_restricted_to_some_addresses(
    database: Database, settings: Settings
) -> None:
    restricted = create_app(replace(settings, metrics_allow=("10.0.0.0/8",)), database)
    with TestClient(restricted, client=("192.0.2.1", 5000)) as outsider:
        assert outsider.get("/metrics").status_code == 404
    with TestClient(restricted, client=("10.1.2.3", 5000)) as insider:
        assert insider.get("/metrics").status_code == 200


@pytest.fixture
def workers(sqlite_url: str, tmp_path: Path) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHONEWAGON_", "PROMETHEUS"))}
    env |= {
        "PHONEWAGON_DATABASE_URL": sqlite_url,
        "PHONEWAGON_REDIS_URL": REDIS_URL,
        "PHONEWAGON_REDIS_PREFIX": f"pwtest-{uuid.uuid4().hex}",
        "TMPDIR": str(tmp_path),
    }
    cli("accounts", "create", "Metrics", env=env)
    server = Server(["serve", "--workers", "3"], env)
    yield server
    server.stop()


def test_metrics_add_up_across_workers_and_leave_nothing_behind(
    workers: Server, tmp_path: Path
) -> None:
    assert list(tmp_path.glob("phonewagon-metrics-*"))
    with httpx.Client(base_url=workers.url, auth=WRONG) as client:
        statuses = [client.get("/companies").status_code for _ in range(12)]
    with httpx.Client(base_url=workers.url) as client:
        scrapes = [scrape(client) for _ in range(4)]  # each may be answered by another worker
    failures = statuses.count(401) + statuses.count(429)
    assert failures == 12
    for samples in scrapes:
        assert value(samples, "phonewagon_auth_failures_total") == 12
        assert requests(samples, "/companies", 401) == statuses.count(401)
    workers.stop()
    assert not list(tmp_path.glob("phonewagon-metrics-*"))


def test_metrics_settings_are_read_from_the_environment() -> None:
    env = {"PHONEWAGON_METRICS": "OFF", "PHONEWAGON_METRICS_ALLOW": "10.0.0.0/8"}
    settings = Settings.from_env(env)
    assert (settings.metrics, settings.metrics_allow) == (False, ("10.0.0.0/8",))
    with pytest.raises(ConfigurationError, match="PHONEWAGON_METRICS must be on or off"):
        Settings.from_env({"PHONEWAGON_METRICS": "maybe"})
