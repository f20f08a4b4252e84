"""What every request handler shares: settings, database, webhook intake, limiters and clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar, cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from phonewagon_server.config import Settings
from phonewagon_server.credentials import CredentialUses, VerifiedCredentials
from phonewagon_server.db import Database
from phonewagon_server.ratelimit import Limiter
from phonewagon_server.twilio.intake import Intake

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class AppContext:
    settings: Settings
    database: Database
    account_limiter: Limiter
    auth_failure_limiter: Limiter
    verified_credentials: VerifiedCredentials
    intake: Intake  # where accepted webhooks are queued, and the numbers they ring
    wall_clock: Callable[[], float] = field(default=time.time)
    # Whether a short request's blocking work may run on the event loop: see `run_short`.
    short_work_inline: bool = False
    # Where authentication notes that a credential was used (None: nowhere).
    credential_uses: CredentialUses | None = None

    def now_ms(self) -> int:
        return int(self.wall_clock() * 1000)

    async def run_short(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a small request's blocking work: credentials, the limiter, a few rows.

        With SQLite and the in-memory limiter it runs right here, on the event loop: it takes
        tens of microseconds, less than the hop to a worker thread and back (40-100 us, more
        under load). A PostgreSQL or Redis round trip, or an outage's timeout, would stall every
        request on the loop meanwhile: with either, the work waits in a worker thread.
        """
        if self.short_work_inline:
            return work(*args, **kwargs)
        return await run_in_threadpool(work, *args, **kwargs)


def context_of(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)
