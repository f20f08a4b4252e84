"""The deployment's background work, in a process of its own: `phonewagon-server work`.

Applying accepted webhooks to the calls, fetching recordings, and purging old website visits.
The first two used to run in threads of every
web worker, where they took the interpreter's lock from the requests: a burst of webhooks was
accepted at half the speed (decision 16). `serve` now starts one `work` process beside its web
workers and starts it again if it dies; an operator may run it on its own instead (`none`).
The work is claimed from the queue with leases, so several of them may run, anywhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.dni.purge import HourlyPurge
from phonewagon_server.queue import JobQueue
from phonewagon_server.twilio.workers import LiveWorkers

logger = logging.getLogger("phonewagon_server.background")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_GRACE_SECONDS = 60.0  # a recording fetch in flight is bounded well inside it
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
ORPHAN_CHECK_SECONDS = 1.0
HEALTHY_RUN_SECONDS = 60.0


def run_work(
    settings: Settings, database: Database, stop: threading.Event, *, parent: int | None = None
) -> None:
    """Do the background work until `stop` is set, or until `parent`, the process that started
    this one, is gone (a `serve` killed outright must not leave its work process behind)."""
    queue = JobQueue.beside(database)
    workers = LiveWorkers(database, queue, settings)
    purge = HourlyPurge(database, settings)
    if settings.twilio_auth_tokens:  # without one every webhook is refused: nothing to apply
        workers.start()
    purge.start()
    logger.info("background work started (live calls: %s)", bool(settings.twilio_auth_tokens))
    try:
        while not stop.wait(ORPHAN_CHECK_SECONDS):
            if parent is not None and os.getppid() != parent:
                logger.warning("the process that started the background work is gone: stopping")
                break
    finally:
        purge.stop()
        workers.stop()
        queue.close()
        logger.info("background work stopped")


@contextlib.contextmanager
def background_process(settings: Settings, *, log_level: str) -> Iterator[None]:
    """`phonewagon-server work` running beside the caller, restarted when it dies, stopped
    (SIGTERM, then SIGKILL after a grace) when the caller's block ends."""
    supervisor = _Supervisor(settings, log_level=log_level)
    # uvicorn handles SIGTERM, then raises it again once it has stopped serving, for the default
    # action to end the process at once: this turns it into an exit that runs the `finally`.
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    supervisor.start()
    try:
        yield
    finally:
        supervisor.stop()
        signal.signal(signal.SIGTERM, previous)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


class _Supervisor:
    def __init__(self, settings: Settings, *, log_level: str) -> None:
        self._command = [
            *(sys.executable, "-m", "phonewagon_server", "work", "--log-level", log_level),
            *("--stop-with", str(os.getpid())),
        ]
        self._env = {**os.environ, **settings.as_env()}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._watch, name="phonewagon-work", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                logger.error("the background work did not stop in time: killed")
                process.kill()
                process.wait()
        self._thread.join(timeout=5)

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self._process = subprocess.Popen(self._command, env=self._env)  # noqa: S603

    def _watch(self) -> None:
        failures = 0
        while self._process is not None:
            started = time.monotonic()
            code = self._process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > HEALTHY_RUN_SECONDS:
                failures = 0  # a crash now and then waits the shortest time
            delay = RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)]
            logger.error("the background work exited with %s: restarted in %.0f s", code, delay)
            failures += 1
            if self._stopping.wait(delay):
                return
            self._spawn()
