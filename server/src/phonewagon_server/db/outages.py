"""What the engines do while a database fails: answer fast, say so once, and never wait forever.

`Outage` keeps one request at a time probing a database that failed, logs the reason once when
an outage begins and one line when it ends. `RoundTripDeadlines` bounds each round trip on the
client side: `statement_timeout` bounds what a server does, but nothing bounds a server, a proxy
or a network that stops answering while the socket stays open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from phonewagon_server.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)
Clock = Callable[[], float]


class Outage:
    """While the database is down, one request at a time waits to find out if it is back.

    Without this, every request would hold a worker thread for the whole pool timeout before
    its 503, until the threads run out and even `/healthz` queues behind them. With
    `fail_fast=False` (SQLite, whose errors are immediate) it only keeps the log.
    """

    FAIL_FAST_SECONDS = 1.0

    def __init__(self, *, clock: Clock = time.monotonic, fail_fast: bool = True) -> None:
        self._clock = clock
        self._fail_fast = fail_fast
        self._lock = threading.Lock()
        self._began_at: float | None = None
        self._failed_at: float | None = None
        self._refused = 0
        self._probe_running = False

    @property
    def down(self) -> bool:
        return self._began_at is not None

    def admit(self) -> bool:
        """Whether this request is the one probing; raise at once if another one should."""
        if self._began_at is None or not self._fail_fast:  # the usual case: no lock taken
            return False
        with self._lock:
            if self._failed_at is None:
                return False
            if self._probe_running or self._clock() - self._failed_at < self.FAIL_FAST_SECONDS:
                self._refused += 1
                raise DatabaseUnavailable()
            self._probe_running = True
            return True

    def failed(self, reason: str, *, probing: bool = False) -> None:
        with self._lock:
            now = self._clock()
            self._failed_at = now
            self._refused += 1
            if probing:
                self._probe_running = False
            if self._began_at is not None:
                return
            self._began_at = now
        logger.warning("database unavailable: %s; answering 503 until it is back", reason)

    def recovered(self, *, probing: bool = False) -> None:
        if self._began_at is None and not probing:
            return
        with self._lock:
            began, self._began_at, self._failed_at = self._began_at, None, None
            refused, self._refused = self._refused, 0
            if probing:
                self._probe_running = False
        if began is not None:
            logger.warning(
                "database available again after %.1f s; %d request(s) were answered 503",
                self._clock() - began,
                refused,
            )


# SQLSTATE classes whose messages name a condition, never a statement or its values: connection
# exception, transaction rollback (deadlock), insufficient resources, operator intervention.
_PLAIN_SPOKEN = ("08", "40", "53", "57")


def reason_of(exc: BaseException) -> str:
    """What an operator needs from a database error: its kind and first line, without SQL."""
    first_line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate and not sqlstate.startswith(_PLAIN_SPOKEN):
        first_line = ""
    name = type(exc).__name__
    return f"{name}: {first_line}" if first_line else name


class RoundTripDeadlines:
    """Shuts down the socket of a connection whose round trip outlives its deadline.

    The waiting thread then reads the end of the stream at once and gets a connection error
    (a 503), and the pool replaces the connection. One thread watches every connection in use,
    sleeping until the earliest deadline, or for IDLE_SECONDS when there is none: a round trip
    that starts wakes it only if it must end sooner (a wake-up per statement, under load, cost
    the writing threads more than their statements did).
    """

    IDLE_SECONDS = 1.0

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._changed = threading.Condition()
        self._watched: dict[int, tuple[float, psycopg.Connection[Any]]] = {}
        self._watcher: threading.Thread | None = None
        self._closed = False
        self._wakes_at = 0.0  # when the watcher looks next

    @contextlib.contextmanager
    def bound(self, raw: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
        """Within this block, `raw` must answer within `seconds` of its start."""
        key = id(raw)
        with self._changed:
            self._start_watcher()
            deadline = self._clock() + seconds
            self._watched[key] = (deadline, raw)
            if deadline < self._wakes_at:
                self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._watched.pop(key, None)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _start_watcher(self) -> None:
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name="database-deadlines", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        with self._changed:
            while not self._closed:
                now = self._clock()
                earliest = min(
                    (deadline for deadline, _ in self._watched.values()),
                    default=now + self.IDLE_SECONDS,
                )
                if earliest > now:
                    self._wakes_at = earliest
                    self._changed.wait(earliest - now)
                    continue
                for key, (deadline, raw) in list(self._watched.items()):
                    if deadline <= now:
                        # Under the lock: the connection is still in use, its socket still its own.
                        del self._watched[key]
                        _shut_down(raw)


def _shut_down(raw: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(OSError, psycopg.Error):
        duplicate = socket.socket(fileno=os.dup(raw.pgconn.socket))
        with duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
        logger.warning("database gave no answer in time: its connection was closed")
