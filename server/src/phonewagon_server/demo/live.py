"""Calls that ring the demo's tracking numbers while it serves, through the real webhooks.

A simulated Twilio (`twilio.simulator`) signs and sends each call's webhooks as Twilio would,
at a compressed pace: ringing, answered, the hang-up a few seconds later, then the recording,
which the server fetches from the simulated Twilio API. Now and then a webhook comes twice or
out of order, as Twilio's do.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import Final

import httpx

from phonewagon_server.twilio.simulator import TwilioSender, Webhook, events, random_call

logger = logging.getLogger("phonewagon_server.demo")

DEMO_TWILIO_ACCOUNT_SID: Final = "AC" + "d3" * 16  # the simulated Twilio's, as public as the demo
DEMO_TWILIO_AUTH_TOKEN: Final = "demo" + "0" * 28
MEAN_SECONDS_BETWEEN_CALLS: Final = 6.0
LONGEST_CALL_SECONDS: Final = 12.0  # a call's talk, compressed


class DemoCalls:
    def __init__(
        self, server_url: str, *, public_url: str, api_base: str, numbers: Sequence[str]
    ) -> None:
        self.server_url = server_url
        self.public_url = public_url
        self.api_base = api_base
        self.numbers = list(numbers)
        self._stopping = threading.Event()
        self._rng = random.Random()  # noqa: S311 - made-up calls
        self._thread = threading.Thread(target=self._run, name="demo-calls", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        if not self._wait_for_server():
            return
        while not self._stopping.wait(self._rng.expovariate(1 / MEAN_SECONDS_BETWEEN_CALLS)):
            self.ring(self._rng.choice(self.numbers))

    def _wait_for_server(self) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self._stopping.is_set():
            try:
                if httpx.get(f"{self.server_url}/healthz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        return False

    def ring(self, number: str) -> None:
        """A call to `number`, its webhooks sent from a thread of its own over its life."""
        seed = self._rng.getrandbits(64)
        threading.Thread(target=self._ring, args=(seed, number), daemon=True).start()

    def _ring(self, seed: int, number: str) -> None:
        rng = random.Random(seed)  # noqa: S311
        call = random_call(rng, to_number=number)
        webhooks = events(call, account_sid=DEMO_TWILIO_ACCOUNT_SID, api_base=self.api_base)
        sender = TwilioSender(
            self.server_url, auth_token=DEMO_TWILIO_AUTH_TOKEN, public_url=self.public_url
        )
        with sender:
            for webhook, pause in self._schedule(rng, webhooks, call.duration):
                if self._stopping.wait(pause):
                    return
                try:
                    sender.send(webhook)
                except httpx.HTTPError as exc:
                    logger.warning("demo call %s: %s", call.sid, exc)
                    return

    @staticmethod
    def _schedule(
        rng: random.Random, webhooks: list[Webhook], duration: int
    ) -> list[tuple[Webhook, float]]:
        """Each webhook with the seconds to wait before it; sometimes one twice, or two
        swapped."""
        talk = min(float(duration), LONGEST_CALL_SECONDS)
        pauses = [0.0, 0.3, 2.0, talk, 1.0][: len(webhooks)]
        pauses += [1.0] * (len(webhooks) - len(pauses))
        schedule = list(zip(webhooks, pauses, strict=True))
        if rng.random() < 0.15 and len(schedule) > 2:
            schedule.insert(2, schedule[1])  # Twilio retried one
        if rng.random() < 0.1 and len(schedule) > 3:
            schedule[1], schedule[2] = schedule[2], schedule[1]  # two overtook each other
        return schedule
