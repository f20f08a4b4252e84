"""PostgreSQL going away: 503 with Retry-After while it is gone, and recovery without a restart."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from starlette.testclient import TestClient

from phonewagon_server.api import create_app
from phonewagon_server.config import Settings
from phonewagon_server.db import Database, open_database
from phonewagon_server.db.migrations import upgrade
from phonewagon_server.db.postgres import PostgresDatabase
from phonewagon_server.errors import DatabaseTimeout, DatabaseUnavailable
from server_testkit import POSTGRES_URL, PUBLIC_URL, FakeClock, Tenant, World


@pytest.fixture
def named_postgres_url(postgres_url: str) -> str:
    """The test schema's URL, with an application name that marks its connections."""
    return f"{postgres_url}&application_name=pw_outage_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(named_postgres_url: str, clock: FakeClock) -> Iterator[tuple[TestClient, World]]:
    database = open_database(named_postgres_url)
    upgrade(database)
    settings = Settings(database_url=named_postgres_url, public_url=PUBLIC_URL)
    app = create_app(settings, database, wall_clock=clock, monotonic=clock)
    with TestClient(app) as test_client:
        yield test_client, World(database)
    database.close()


def test_the_pool_heals_after_its_connections_are_killed(
    client: tuple[TestClient, World], named_postgres_url: str
) -> None:
    api, world = client
    tenant = world.tenant()
    assert api.get("/companies", auth=tenant.auth).status_code == 200
    application_name = named_postgres_url.rsplit("application_name=", 1)[1]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1
    assert api.get("/companies", auth=tenant.auth).status_code == 200
    assert api.get("/readyz").status_code == 200


def test_an_unreachable_postgresql_is_a_503_with_retry_after(clock: FakeClock) -> None:
    url = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1"
    database = open_database(url)
    app = create_app(Settings(database_url=url, public_url=PUBLIC_URL), database, wall_clock=clock)
    try:
        with TestClient(app) as api:
            for path in ("/readyz", "/companies"):
                response = api.get(path, auth=("pwid_x", "pwsk_y"))
                assert response.status_code == 503
                assert response.headers["content-type"] == "application/problem+json"
                assert int(response.headers["retry-after"]) > 0
                assert "psycopg" not in response.text
                assert "127.0.0.1" not in response.text
            assert api.get("/healthz").status_code == 200
    finally:
        database.close()


def test_while_postgresql_is_down_one_request_probes_and_the_rest_fail_at_once(
    clock: FakeClock,
) -> None:
    """No request holds a worker thread for the pool timeout while another is already finding
    out whether the database is back."""
    database = PostgresDatabase(
        "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1", pool_size=2, clock=clock
    )
    try:
        outcomes = []
        for advance in (0.0, 0.0, 0.5, 0.6):
            clock.advance(advance)
            with pytest.raises(DatabaseUnavailable) as refused, database.transaction():
                pass
            outcomes.append("probed" if refused.value.__cause__ else "at once")
        assert outcomes == ["probed", "at once", "at once", "probed"]
    finally:
        database.close()


def test_a_statement_past_its_time_limit_is_a_503_but_no_outage(postgres_url: str) -> None:
    """The database answered: the next request goes to it at once instead of failing fast."""
    database = open_database(postgres_url)
    try:
        with pytest.raises(DatabaseTimeout) as refused:
            _sleep_past_the_time_limit(database)
        assert refused.value.status == 503
        assert "too long" in refused.value.detail
        with database.transaction() as tx:
            assert tx.fetchone("SELECT 1") == (1,)
    finally:
        database.close()


def _sleep_past_the_time_limit(database: Database) -> None:
    with database.transaction(write=True) as tx:
        tx.execute("SET LOCAL statement_timeout = 50")
        tx.execute("SELECT pg_sleep(2)")


def test_an_outage_is_logged_once_with_its_reason_and_once_when_it_ends(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    database = PostgresDatabase(
        "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1", pool_size=2, clock=clock
    )
    try:
        with caplog.at_level(logging.WARNING, logger="phonewagon_server"):
            for _ in range(2):
                for _ in range(3):  # one probe, then two refused at once
                    with pytest.raises(DatabaseUnavailable), database.transaction():
                        pass
                clock.advance(1.1)
        outages = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(outages) == 1
        assert "NoneType" not in outages[0]
        assert "PoolTimeout" in outages[0] or "connection" in outages[0].lower()
    finally:
        database.close()


class SilentProxy:
    """A TCP proxy to PostgreSQL that can stop forwarding while it keeps every socket open, as
    a hung server, proxy or network would."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.forwarding = threading.Event()
        self.forwarding.set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.forwarding.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                end.close()

    def close(self) -> None:
        self.forwarding.set()
        for sock in self._sockets:
            sock.close()


def test_a_database_that_stops_answering_gives_503s_not_hung_requests_and_the_pool_heals(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    parts = urlsplit(postgres_url)
    proxy = SilentProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    database = PostgresDatabase(proxied, pool_size=3, statement_timeout_ms=500)
    upgrade(database)
    tenant = World(database).tenant()
    app = create_app(Settings(database_url=proxied, public_url=PUBLIC_URL), database)
    try:
        with TestClient(app) as api, caplog.at_level(logging.WARNING, logger="phonewagon_server"):
            assert api.get("/companies", auth=tenant.auth).status_code == 200
            proxy.forwarding.clear()
            answers: list[int] = []

            def ask() -> None:
                response = api.get("/calls", auth=tenant.auth)
                answers.append(response.status_code)
                assert int(response.headers["retry-after"]) > 0

            askers = [threading.Thread(target=ask) for _ in range(4)]
            for asker in askers:
                asker.start()
            for asker in askers:
                asker.join(timeout=60)  # a guard against a hang, not a speed test
            assert [asker.is_alive() for asker in askers] == [False] * 4
            assert answers == [503] * 4
            proxy.forwarding.set()
            assert _answers_within(api, tenant, seconds=30) == 200
            assert api.get("/readyz").status_code == 200
        messages = [record.getMessage() for record in caplog.records]
        assert any("no answer in time" in m for m in messages)
        assert sum("database unavailable" in m for m in messages) == 1
        assert sum("available again" in m for m in messages) == 1
    finally:
        database.close()
        proxy.close()


def _answers_within(api: TestClient, tenant: Tenant, *, seconds: float) -> int:
    """The first status other than 503 within `seconds` (the pool heals by itself)."""
    deadline = time.monotonic() + seconds
    status = api.get("/companies", auth=tenant.auth).status_code
    while status == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = api.get("/companies", auth=tenant.auth).status_code
    return status
