"""The demo account: found and reused, or created with its companies, campaigns and calls."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Final

from phonewagon_server import credentials
from phonewagon_server.db import accounts, calls, companies, users
from phonewagon_server.db.engine import Connection, Database
from phonewagon_server.demo.catalog import COMPANIES
from phonewagon_server.demo.recordings import add_tracking_numbers, keep_recordings
from phonewagon_server.demo.traffic import DAY_MS, HISTORY_START_MS, generate_calls
from phonewagon_server.demo.website import SITE, add_website_pool
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.models import CALL_IMPORT_FIELDS, Call, Campaign, Company
from phonewagon_server.passwords import hash_password

DEMO_ACCOUNT_NAME: Final = "Phonewagon Demo Agency"
# A public credential, printed by `phonewagon-server demo` and in the docs: it opens nothing but
# this demo data, so it is constant and lives in the source on purpose.
DEMO_CLIENT_ID: Final = "pwid_demo3ca97a71410731c3"
DEMO_CLIENT_SECRET: Final = "pwsk_NbRn43oPrmGT-JC_Yx2PqAlprrPdatyPKA6DutiWmSw"  # noqa: S105
# The demo's person, who signs in to the web app: public too, for the same reason.
DEMO_USER_EMAIL: Final = "demo@phonewagon.example"
DEMO_USER_PASSWORD: Final = "phonewagon-demo"  # noqa: S105

BATCH_SIZE: Final = 5_000
DEMO_PUBLIC_URL: Final = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class DemoData:
    account_id: int
    client_id: str
    client_secret: str
    user_email: str
    user_password: str
    companies: list[Company]
    campaigns: list[Campaign]
    calls: int
    created: bool


def load_demo(
    database: Database,
    *,
    now_ms: int,
    seed: int = 2212,
    scale: float = 1.0,
    public_url: str = DEMO_PUBLIC_URL,
) -> DemoData:
    """Create the demo account and its data, or return the one already there (`created=False`).

    `scale` multiplies the call volume (tests use a small one); above 1, callers repeat more, as
    the fictional numbers (26,200) run out. Recorded calls' `recording_url` is under `public_url`.
    Run the migrations first.
    """
    if scale < 0:
        raise ValueError(f"scale must be at least 0, not {scale}")
    with database.transaction(write=True) as tx:
        account_id = _find_demo_account(tx)
        if account_id is not None:
            _add_demo_user(tx, account_id, now=now_ms)  # a demo made before the web app
            data = _read_demo(tx, account_id)
        else:
            rng = random.Random(seed)  # noqa: S311 (made-up demo data: reproducible, not secret)
            data = _create_demo(tx, rng=rng, now_ms=now_ms, scale=scale, public_url=public_url)
        add_tracking_numbers(tx, data.campaigns, now=now_ms)
        site = next(company for company in data.companies if company.name == SITE.name)
        add_website_pool(tx, site, now=now_ms)
        data = dataclasses.replace(data, campaigns=companies.list_campaigns(tx, data.account_id))
    return data


def _find_demo_account(tx: Connection) -> int | None:
    """The demo account's id if it is there with its credential active, None if there is none."""
    found = accounts.find_active_secret_hash(tx, DEMO_CLIENT_ID)
    if found is None:
        if any(companies.campaign_exists(tx, k.id) for c in COMPANIES for k in c.campaigns):
            raise _conflict()
        return None
    account_id, secret_hash = found
    account = accounts.get_account(tx, account_id)
    if account is None or account.name != DEMO_ACCOUNT_NAME:
        raise _conflict()
    if not credentials.verify_secret(DEMO_CLIENT_SECRET, secret_hash):
        raise _conflict()
    return account_id


def _conflict() -> ConfigurationError:
    return ConfigurationError(
        "this database holds demo data that cannot be reused (its credential was revoked,"
        " its account renamed, or its campaign ids are taken): load the demo into a fresh database"
    )


def _add_demo_user(tx: Connection, account_id: int, *, now: int) -> None:
    """The demo's person, unless the demo has one already (or the email is taken)."""
    if users.find_user(tx, DEMO_USER_EMAIL) is None:
        users.create_user(
            tx,
            account_id=account_id,
            email=DEMO_USER_EMAIL,
            password_hash=hash_password(DEMO_USER_PASSWORD),
            now=now,
        )


def _read_demo(tx: Connection, account_id: int) -> DemoData:
    return DemoData(
        account_id=account_id,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        user_email=DEMO_USER_EMAIL,
        user_password=DEMO_USER_PASSWORD,
        companies=companies.list_companies(tx, account_id),
        campaigns=companies.list_campaigns(tx, account_id),
        calls=calls.count_calls(tx, account_id),
        created=False,
    )


def _create_demo(
    tx: Connection, *, rng: random.Random, now_ms: int, scale: float, public_url: str
) -> DemoData:
    midnight = now_ms - now_ms % DAY_MS
    created_at = min(HISTORY_START_MS, midnight)
    account = accounts.create_account(tx, DEMO_ACCOUNT_NAME, now=created_at)
    accounts.insert_credential(
        tx,
        account_id=account.id,
        client_id=DEMO_CLIENT_ID,
        secret_hash=credentials.hash_secret(DEMO_CLIENT_SECRET),
        now=created_at,
    )
    _add_demo_user(tx, account.id, now=created_at)
    made_companies, made_campaigns = _create_companies(tx, account.id, now=created_at)
    company_ids = [c.id for c in made_companies]
    generated = generate_calls(
        rng, company_ids, until_ms=midnight, scale=scale, public_url=public_url
    )
    by_id = {campaign.id: campaign for campaign in made_campaigns}
    records = [Call(**{name: call[name] for name in CALL_IMPORT_FIELDS}) for call in generated]
    calls.stamp_calls_of_a_new_account(tx)
    for start in range(0, len(records), BATCH_SIZE):
        calls.write_calls(tx, records[start : start + BATCH_SIZE], by_id)
    recorded = [(r.sid, r.start_time) for r in records if r.recording_url]
    keep_recordings(tx, account.id, recorded)
    return DemoData(
        account_id=account.id,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        user_email=DEMO_USER_EMAIL,
        user_password=DEMO_USER_PASSWORD,
        companies=made_companies,
        campaigns=made_campaigns,
        calls=len(records),
        created=True,
    )


def _create_companies(
    tx: Connection, account_id: int, *, now: int
) -> tuple[list[Company], list[Campaign]]:
    made_companies: list[Company] = []
    made_campaigns: list[Campaign] = []
    for spec in COMPANIES:
        company = companies.create_company(tx, account_id=account_id, name=spec.name, now=now)
        made_companies.append(company)
        for campaign in spec.campaigns:
            made_campaigns.append(
                companies.create_campaign(
                    tx, company=company, name=campaign.name, campaign_id=campaign.id, now=now
                )
            )
    return made_companies, made_campaigns
