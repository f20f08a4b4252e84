"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol, bounded while a head arrives.

httptools takes a request head (request line and headers) of any size, at any pace: uvicorn's
`h11_max_incomplete_event_size` applies to its pure-Python h11 protocol only, and its keep-alive
timeout stops once a first byte arrives. So a client could hold memory or a connection as long as
it liked. Here a head must fit in `MAX_HEAD_BYTES` (or it is answered 431 and the connection
closed) and arrive within `HEAD_TIMEOUT` seconds (or the connection is closed). The app's own,
tighter limits (`api.security.RequestLimits`) then apply to what got through.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0


def _refusal(status: int, title: str, detail: str) -> bytes:
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    head = (
        f"HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


HEAD_TOO_LARGE = _refusal(
    431,
    "Request Header Fields Too Large",
    f"The request line and headers exceed {MAX_HEAD_BYTES} bytes.",
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = MAX_HEAD_BYTES
    head_timeout = HEAD_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_bytes = 0
        self._reading_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
            self._start_head_timer()
        super().data_received(data)
        # Checked once httptools has seen the chunk: a head that ended in it is not held against
        # the body that followed. What a client can make us buffer: the limit plus one read.
        if self._reading_head and self._head_bytes > self.max_head_bytes:
            self._reading_head = False
            if not self.transport.is_closing():
                logger.info(
                    "request head over %d bytes from %s: 431", self.max_head_bytes, _ip(self)
                )
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._reading_head and not self.transport.is_closing():
            logger.info("request head not received in %.0f s from %s", self.head_timeout, _ip(self))
            self.transport.close()


def _ip(protocol: HttpToolsProtocol) -> str:
    return protocol.client[0] if protocol.client else "unknown"
