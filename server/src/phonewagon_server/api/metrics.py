"""Prometheus metrics at `/metrics`: what the API answered, how fast, and what it refused.

Label values are bounded whatever clients send: route templates (or `unmatched`), a fixed set of
methods, status codes; never a raw path or an account id. With `serve --workers N`, the workers
share their counts through files in `PROMETHEUS_MULTIPROC_DIR`, which `serve` creates.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
from collections.abc import Callable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.dni.counters import dni_counters

METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
# From a cached page (~1 ms) to a slow database (seconds).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def count_in_shared_directory(directory: str) -> None:
    """Metrics made from now on in this process count in `directory`, where those of the other
    processes of the deployment count too: as in a process started with PROMETHEUS_MULTIPROC_DIR
    set, which its children inherit. (prometheus_client reads the variable once, on import.)"""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class Metrics:
    """The server's counters, fed once per request by the edge middleware."""

    def __init__(self) -> None:
        # `_created` series would double the count, telling little. (Unannotated upstream.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self._registry = registry = CollectorRegistry()
        self.requests = Counter(
            "phonewagon_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "phonewagon_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            ["route"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "phonewagon_http_requests_in_flight",
            "Requests being served right now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rate_limited = Counter(
            "phonewagon_rate_limited",
            "Requests refused 429: over an account's quota, or from an address failing auth.",
            ["limit"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "phonewagon_auth_failures",
            "Requests with missing, unknown, wrong or revoked credentials.",
            registry=registry,
        )
        self.database_errors = Counter(
            "phonewagon_database_errors",
            "Requests answered 503: the database could not be reached, or a statement timed out.",
            registry=registry,
        )
        dni_counters().register(registry)
        # Each request's two series, looked up once: `labels()` takes a lock and builds a key.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        for limit in ("account", "auth_failure"):
            self.rate_limited.labels(limit)
        if self.multiprocess_dir is None:
            for collector in (ProcessCollector, PlatformCollector, GCCollector):
                collector(registry=registry)
        else:  # a stopped worker's in-flight gauge must stop counting
            atexit.register(multiprocess.mark_process_dead, os.getpid(), self.multiprocess_dir)

    def observe(
        self, *, route: str, method: str, status: int, seconds: float, authenticated: bool
    ) -> None:
        """Count one answered request; its status says whether it was refused and why."""
        method = method if method in METHODS else "other"
        key = (route, method, status)  # bounded: see the module's docstring
        if (series := self._series.get(key)) is None:
            requests, latency = self.requests.labels(route, method, str(status)), self.latency
            series = self._series[key] = (requests, latency.labels(route))
        series[0].inc()
        series[1].observe(seconds)
        if status == 401:
            self.auth_failures.inc()
        elif status == 429 and authenticated:
            self.rate_limited.labels("account").inc()
        elif status == 429:
            self.auth_failures.inc()
            self.rate_limited.labels("auth_failure").inc()
        elif status == 503:
            self.database_errors.inc()

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        collect = multiprocess.MultiProcessCollector  # unannotated upstream
        collect(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def metrics_endpoint(metrics: Metrics, allowed: Sequence[str]) -> Callable[[Request], Response]:
    """`GET /metrics`, without credentials; to addresses outside `allowed` (if any), a 404."""
    networks = [ipaddress.ip_network(entry) for entry in allowed]

    def is_allowed(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in networks)

    def metrics_page(request: Request) -> Response:
        if networks and not (request.client and is_allowed(request.client.host)):
            raise HTTPException(404)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return metrics_page
