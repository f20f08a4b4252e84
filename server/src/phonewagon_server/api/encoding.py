"""Content-Encoding negotiation: zstd where the client offers it, gzip otherwise, or none.

A page of 1000 calls is about 1.2 MB of JSON that compresses ~10x. zstd at level 1 costs a
fraction of gzip's time for a similar size, so it wins whenever the client's q-values tie
(measured per page in docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import zlib
from typing import Final, Literal

import zstandard

Coding = Literal["zstd", "gzip"]

MIN_COMPRESSED_BYTES: Final = 1024  # below this the headers cost more than the bytes saved
_PREFERENCE: Final[tuple[Coding, ...]] = ("zstd", "gzip")  # ours, when q-values tie
_ZSTD_LEVEL: Final = 1
_GZIP_LEVEL: Final = 1
# A ZstdCompressor must not be used by two threads at once (they corrupted each other's frames
# under load): each thread of the pool keeps its own.
_per_thread = threading.local()


def negotiate(accept_encoding: str | None) -> Coding | None:
    """The coding to answer with under RFC 9110 §12.5.3, or None for the body as it is."""
    if not accept_encoding:
        return None
    offered = _offered(accept_encoding)
    wildcard = offered.get("*", 0.0)
    best: Coding | None = None
    best_q = 0.0
    for coding in _PREFERENCE:
        q = offered.get(coding, wildcard)
        if q > best_q:
            best, best_q = coding, q
    return best


def accepts(accept_encoding: str | None, coding: Coding) -> bool:
    """Whether the client takes `coding` at all, whichever it prefers."""
    offered = _offered(accept_encoding or "")
    return offered.get(coding, offered.get("*", 0.0)) > 0.0


def _offered(accept_encoding: str) -> dict[str, float]:
    offered: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        offered[name.strip().lower()] = _quality(params)
    return offered


def compress(body: bytes, coding: Coding) -> bytes:
    if coding == "zstd":
        compressor = getattr(_per_thread, "zstd", None)
        if compressor is None:
            compressor = _per_thread.zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        return compressor.compress(body)
    # wbits 31: a gzip member (header and CRC), as `Content-Encoding: gzip` means.
    packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)
    return packer.compress(body) + packer.flush()


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0  # a q-value we cannot read offers nothing
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0
