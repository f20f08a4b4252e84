"""The demo's recordings and tracking numbers: real audio served by the demo server itself.

The ~35,000 recorded calls of the demo's history share a few short generated tones, so the demo
costs a few hundred KB of audio; the calls that ring while it runs get their own, fetched from
the simulated Twilio as a deployment fetches from Twilio.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from phonewagon_server.db import numbers as number_rows
from phonewagon_server.db.engine import Connection
from phonewagon_server.db.numbers import TrackingNumber
from phonewagon_server.demo.catalog import COMPANIES
from phonewagon_server.models import Campaign
from phonewagon_server.twilio.simulator import tone_wav

TONES: Final = 8
TONE_TYPE: Final = "audio/x-wav"


def tone_of(sid: str) -> str:
    """Which shared tone a historic call's recording is (stored relative to the directory)."""
    return f"demo/tone-{hashlib.sha256(sid.encode()).digest()[0] % TONES}.wav"


def write_tones(directory: Path) -> None:
    """The shared tones, written once into the recordings directory."""
    for index in range(TONES):
        path = directory / f"demo/tone-{index}.wav"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tone_wav(seconds=3.0, seed=f"demo-tone-{index}"))


def keep_recordings(tx: Connection, account_id: int, calls: list[tuple[str, int]]) -> None:
    """Each (sid, start time) recorded call's recording: one of the shared tones."""
    size = len(tone_wav(seconds=3.0, seed="demo-tone-0"))
    tx.load_rows(
        "call_recordings",
        (
            "account_id",
            "call_sid",
            "recording_sid",
            "stored_as",
            "content_type",
            "size",
            "created_at",
        ),
        [
            (account_id, sid, "RE" + sid[2:], tone_of(sid), TONE_TYPE, size, start)
            for sid, start in calls
        ],
    )


def add_tracking_numbers(tx: Connection, campaigns: list[Campaign], *, now: int) -> None:
    """Each demo campaign's tracking number, forwarding to its company's business line; those
    there already are left as they are (a demo database made before numbers existed gains them)."""
    by_id = {campaign.id: campaign for campaign in campaigns}
    for spec in COMPANIES:
        for campaign_spec in spec.campaigns:
            campaign = by_id.get(campaign_spec.id)
            if campaign is None:
                continue
            number = TrackingNumber(
                number=campaign_spec.tracking_number,
                account_id=campaign.account_id,
                company_id=campaign.company_id,
                campaign_id=campaign.id,
                forward_to=spec.business_number,
                source="",
            )
            number_rows.add_number(tx, number, now=now)
