"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol, bounded while a head arrives.

httptools takes a request head (request line and headers) of any size, at any pace: uvicorn's
`h11_max_incomplete_event_size` applies to its pure-Python h11 protocol only, and its keep-alive
timeout stops once a first byte arrives. So a client could hold memory or a connection as long as
it liked. Here a head must fit in `MAX_HEAD_BYTES` (or it is answered 431 and the connection
closed) and arrive within `HEAD_TIMEOUT` seconds (or the connection is closed). A URL over the
app's limit is answered 414 here, before uvicorn parses it: httptools cannot parse one of 64 KiB
or more. The app's own, tighter limits (`api.security.RequestLimits`) then apply to what got
through. Every refusal here, a request that is not HTTP included, is a problem with the app's
security headers, and the last thing written to its connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from phonewagon_server.api.problems import REFUSAL_TITLES
from phonewagon_server.api.security import MAX_URL_BYTES, security_header_pairs

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0

# No HSTS: it follows the public URL in the settings, which uvicorn does not hand its protocols.
# A browser keeps the max-age an earlier answer from the app gave it.
SECURITY_HEADERS = "".join(f"{name}: {value}\r\n" for name, value in security_header_pairs())


class Refusal(NamedTuple):
    status: int
    reason: str  # for the log
    answer: bytes


def _refusal(status: int, title: str, detail: str, *, reason: str) -> Refusal:
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    head = (
        f"HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n{SECURITY_HEADERS}connection: close\r\n\r\n"
    )
    return Refusal(status, reason, head.encode() + body)


HEAD_TOO_LARGE = _refusal(
    431,
    REFUSAL_TITLES[431],
    f"The request line and headers exceed {MAX_HEAD_BYTES} bytes.",
    reason=f"request head over {MAX_HEAD_BYTES} bytes",
)
URL_TOO_LONG = _refusal(
    414,
    REFUSAL_TITLES[414],
    f"The URL is longer than {MAX_URL_BYTES} bytes.",  # the app's words for it
    reason=f"URL over {MAX_URL_BYTES} bytes",
)
NOT_HTTP = _refusal(
    400, "Bad Request", "The request is not valid HTTP/1.1.", reason="invalid HTTP request"
)


class _Refused(Exception):
    """Raised from a parser callback once the request is refused, to stop httptools there."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = MAX_HEAD_BYTES
    head_timeout = HEAD_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_bytes = 0
        self._reading_head = True
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
            self._start_head_timer()
        self._parse(data)
        # Checked once httptools has seen the chunk: a head that ended in it is not held against
        # the body that followed. What a client can make us buffer: the limit plus one read.
        if self._reading_head and self._head_bytes > self.max_head_bytes:
            self._reading_head = False
            self._refuse(HEAD_TOO_LARGE)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._stop_head_timer()
        if (refusal := _url_refusal(self.url)) is not None:
            self._refuse(refusal)
            # httptools would go on with the rest of the chunk (a body, pipelined requests),
            # calling uvicorn back for a request it never started: an exception stops it.
            raise _Refused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _parse(self, data: bytes) -> None:
        """uvicorn's `data_received`, but a request httptools cannot parse is ours to answer.

        uvicorn would log a warning and answer a plain-text 400, for our own `_Refused` too.
        """
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._refuse(NOT_HTTP)  # a no-op after `_Refused`: its refusal is written already
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _refuse(self, refusal: Refusal) -> None:
        """Answer with `refusal` and close: the first refusal is the connection's last word."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        logger.info("%s from %s: %d", refusal.reason, _ip(self), refusal.status)
        self.transport.write(refusal.answer)
        self.transport.close()

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


def _url_refusal(url: bytes) -> Refusal | None:
    """A URL over the app's limit, counted as the app counts it: its path and query."""
    if len(url) <= MAX_URL_BYTES:
        return None
    if len(url) >= MAX_HEAD_BYTES:  # its head is longer still; and too long for httptools
        return HEAD_TOO_LARGE
    parsed = httptools.parse_url(url)  # raises for what is not a URL: answered NOT_HTTP
    if len(parsed.path or b"") + len(parsed.query or b"") > MAX_URL_BYTES:
        return URL_TOO_LONG
    return None


def _ip(protocol: HttpToolsProtocol) -> str:
    return protocol.client[0] if protocol.client else "unknown"
