"""Recordings: fetched from Twilio's API (and from nowhere else), kept in a directory.

A recording is stored as `<directory>/<its call sid>/<its recording sid>.<type>`, written to a
temporary name and renamed into place: a fetch cut short leaves no half file under the real
name, and one done twice leaves the same file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from phonewagon_server.twilio.events import url_is_plain

MAX_RECORDING_BYTES = 512 * 1024 * 1024  # four hours of two-channel WAV
FETCH_TIMEOUT_SECONDS = 30.0
# What Twilio serves, by the extension we keep it under.
AUDIO_TYPES = {"audio/x-wav": "wav", "audio/wav": "wav", "audio/mpeg": "mp3"}


class FetchRefused(ValueError):
    """A URL outside our Twilio account, or an answer that is not a recording: not retried."""


class FetchFailed(RuntimeError):
    """Twilio did not give the recording this time (its error, or the network's): retried."""


@dataclass(frozen=True, slots=True)
class StoredRecording:
    stored_as: str  # relative to the recordings directory
    content_type: str
    size: int


def recordings_prefix(api_base: str, account_sid: str) -> str:
    """Where our account's recordings live on Twilio's API: the only place fetched from."""
    return f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/"


class RecordingStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, stored_as: str) -> Path:
        return self.directory / stored_as

    def fetch(
        self,
        client: httpx.Client,
        url: str,
        *,
        prefix: str,
        call_sid: str,
        recording_sid: str,
    ) -> StoredRecording:
        """Fetch the recording at `url` (under `prefix`, else refused unrequested) and keep it."""
        if not url.startswith(prefix) or not url_is_plain(url):
            raise FetchRefused(f"{url} is not under {prefix}")
        try:
            with client.stream("GET", url, follow_redirects=False) as response:
                if response.status_code in (429,) or response.status_code >= 500:
                    raise FetchFailed(f"Twilio answered {response.status_code}")
                if response.status_code != 200:  # 404 included: Twilio may not have it yet
                    raise FetchFailed(f"Twilio answered {response.status_code}")
                content_type = response.headers.get("content-type", "").split(";")[0].strip()
                extension = AUDIO_TYPES.get(content_type)
                if extension is None:
                    raise FetchRefused(f"Twilio sent {content_type or 'no type'}, not audio")
                stored_as = f"{call_sid}/{recording_sid}.{extension}"
                size = self._write(stored_as, response)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc
        return StoredRecording(stored_as, content_type, size)

    def _write(self, stored_as: str, response: httpx.Response) -> int:
        target = self.path_of(stored_as)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".fetching-")
        size = 0
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_RECORDING_BYTES:
                        raise FetchRefused(f"the recording is over {MAX_RECORDING_BYTES} bytes")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return size
