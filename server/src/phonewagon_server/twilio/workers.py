"""The background work of every server process: applying accepted webhooks to the calls, and
fetching recordings. Each a thread that claims jobs from the queue, so any number of processes
share the work and one that dies leaves its claimed jobs to the others."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from phonewagon_server.config import Settings
from phonewagon_server.db import Database
from phonewagon_server.errors import DatabaseUnavailable
from phonewagon_server.queue import Job, JobQueue
from phonewagon_server.twilio.apply import (
    CallNotKnownYet,
    apply_event,
    apply_events,
    attach_recording,
)
from phonewagon_server.twilio.events import CallEvent
from phonewagon_server.twilio.recordings import (
    FETCH_TIMEOUT_SECONDS,
    FetchFailed,
    FetchRefused,
    RecordingStore,
    recordings_prefix,
)

logger = logging.getLogger(__name__)

CALL_EVENT = "call-event"
FETCH_RECORDING = "fetch-recording"
EVENT_LEASE_MS = 30_000
FETCH_LEASE_MS = 120_000  # a fetch is bounded well inside it: timeouts and size
# Tries before a job is kept as failed: about 3.5 hours of retries for an event, 2.5 hours
# for a recording (an outage, or an import holding SQLite's write lock, is ridden out).
MAX_ATTEMPTS = {CALL_EVENT: 30, FETCH_RECORDING: 24}
BATCH = {CALL_EVENT: 200, FETCH_RECORDING: 4}  # jobs a claim: events are applied together
POLL_SECONDS = 0.5  # for jobs queued by other processes; this one's wake the workers at once


def backoff_ms(attempts: int) -> int:
    """1 s, 2 s, 4 s ... then every 10 minutes."""
    return int(min(2 ** max(attempts - 1, 0), 600) * 1000)


class LiveWorkers:
    def __init__(
        self,
        database: Database,
        queue: JobQueue,
        settings: Settings,
        *,
        http: httpx.Client | None = None,
        fetch_lease_ms: int = FETCH_LEASE_MS,
    ) -> None:
        self.database = database
        self._leases = {CALL_EVENT: EVENT_LEASE_MS, FETCH_RECORDING: fetch_lease_ms}
        self.queue = queue
        self.settings = settings
        self.store = RecordingStore(settings.recordings_dir)
        self._http = http or httpx.Client(
            auth=(settings.twilio_account_sid, (settings.twilio_auth_tokens or ("",))[0]),
            timeout=FETCH_TIMEOUT_SECONDS,
        )
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for kind, work in ((CALL_EVENT, self._apply), (FETCH_RECORDING, self._fetch)):
            thread = threading.Thread(
                target=self._loop, args=(kind, work), name=f"phonewagon-{kind}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self.queue.arrived.set()
        for thread in self._threads:
            thread.join(timeout=FETCH_TIMEOUT_SECONDS + 5)
        self._http.close()

    def run_until_idle(self) -> None:
        """Do every job that is due now, then return (tests, and the demo's first calls)."""
        while self._run_once(CALL_EVENT, self._apply) + self._run_once(
            FETCH_RECORDING, self._fetch
        ):
            pass

    def _loop(self, kind: str, work: Callable[[Job], None]) -> None:
        while not self._stopping.is_set():
            try:
                done = self._run_once(kind, work)
            except DatabaseUnavailable as exc:  # the queue's own storage: wait a little
                logger.warning("%s jobs wait: %s", kind, exc.reason or exc)
                done = 0
            except Exception:  # a bug must not stop the work for good: logged, then tried again
                logger.exception("%s jobs could not be claimed", kind)
                done = 0
            if not done:
                self.queue.arrived.wait(POLL_SECONDS)
                self.queue.arrived.clear()

    def _run_once(self, kind: str, work: Callable[[Job], None]) -> int:
        jobs = self.queue.claim([kind], limit=BATCH[kind], lease_ms=self._leases[kind])
        done: list[Job] = []
        if kind == CALL_EVENT and len(jobs) > 1:
            try:
                done = self._apply_together(jobs)
            except DatabaseUnavailable as exc:  # no use trying each: all wait, for later
                for job in jobs:
                    self._retry(job, f"{type(exc).__name__}: {exc}")
                return len(jobs)
            except Exception:  # tried one by one below, so one bad job holds up no other
                done = []
        for job in jobs:
            if job not in done and self._attempt(job, work):
                done.append(job)
        self.queue.done(done)
        return len(jobs)

    def _apply_together(self, jobs: list[Job]) -> list[Job]:
        """Apply a batch of events in a transaction per account."""
        outcomes = apply_events(
            self.database,
            [CallEvent.from_payload(job.payload) for job in jobs],
            attribution_days=self.settings.attribution_days,
        )
        for job, outcome in zip(jobs, outcomes, strict=True):
            if outcome == "no such number":
                self._unknown(CallEvent.from_payload(job.payload))
        return list(jobs)

    def _attempt(self, job: Job, work: Callable[[Job], None]) -> bool:
        """Do `job`; whether it is done (else retried later, or kept as failed)."""
        try:
            work(job)
        except (FetchRefused, ValueError, TypeError) as exc:
            logger.error("%s job %s failed for good: %s", job.kind, job.key, exc)
            self.queue.fail(job, str(exc))
        except (DatabaseUnavailable, FetchFailed, CallNotKnownYet) as exc:
            self._retry(job, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            logger.exception("%s job %s raised; it will be retried", job.kind, job.key)
            self._retry(job, f"{type(exc).__name__}: {exc}")
        else:
            return True
        return False

    def _retry(self, job: Job, error: str) -> None:
        if job.attempts >= MAX_ATTEMPTS[job.kind]:
            logger.error("%s job %s failed %d times: %s", job.kind, job.key, job.attempts, error)
            self.queue.fail(job, error)
            return
        delay = backoff_ms(job.attempts)
        logger.info("%s job %s retried in %d ms: %s", job.kind, job.key, delay, error)
        self.queue.retry(job, error, delay_ms=delay)

    def _apply(self, job: Job) -> None:
        event = CallEvent.from_payload(job.payload)
        days = self.settings.attribution_days
        if apply_event(self.database, event, attribution_days=days) == "no such number":
            self._unknown(event)

    @staticmethod
    def _unknown(event: CallEvent) -> None:
        logger.info("call %s to %s: no such number, not stored", event.call_sid, event.to_number)

    def _fetch(self, job: Job) -> None:
        call_sid, recording_sid = job.payload["call_sid"], job.payload["recording_sid"]
        stored = self.store.fetch(
            self._http,
            job.payload["url"],
            prefix=recordings_prefix(
                self.settings.twilio_api_base, self.settings.twilio_account_sid
            ),
            call_sid=call_sid,
            recording_sid=recording_sid,
        )
        attach_recording(
            self.database,
            call_sid=call_sid,
            recording_sid=recording_sid,
            stored_as=stored.stored_as,
            content_type=stored.content_type,
            size=stored.size,
            url=f"{self.settings.public_url}/call-recordings/{call_sid}/file",
        )
