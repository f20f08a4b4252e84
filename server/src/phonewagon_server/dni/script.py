"""`GET /dni.js`: the browser script, served to customers' pages.

The snippet's URL carries no version (customers paste it once), so browsers keep the script
only a few minutes and then revalidate it by its strong ETag, the hash of its bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from phonewagon_server.api.encoding import accepts, compress

SCRIPT_PATH = Path(__file__).with_name("static") / "dni.js"
MEDIA_TYPE = "text/javascript; charset=utf-8"
CACHE_CONTROL = "public, max-age=300"


@dataclass(frozen=True, slots=True)
class Script:
    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def load(cls, path: Path = SCRIPT_PATH) -> Script:
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return cls(body=body, gzipped=compress(body, "gzip"), etag=etag)

    def serve(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
        tags = {
            tag.strip().removeprefix("W/")
            for tag in request.headers.get("if-none-match", "").split(",")
        }
        if self.etag in tags or "*" in tags:
            return Response(status_code=304, headers=headers)
        body = self.body
        # gzip alone: every browser takes it, and it is made once, at start.
        if accepts(request.headers.get("accept-encoding"), "gzip"):
            body, headers["Content-Encoding"] = self.gzipped, "gzip"
        return Response(body, headers=headers, media_type=MEDIA_TYPE)
