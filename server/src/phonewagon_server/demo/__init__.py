"""The demo data set: one agency account, three companies, their campaigns and ~40,000 calls.

The account's history starts on 2019-09-01 at a few calls a day (so the seed's example request,
`calls?campaign_id=s2212&end_time=1573072575990`, finds a call), then the last 120 days are busy.
Everything follows from `seed` and the UTC day of `now_ms`: a rerun on the same day writes the same
rows, and no call is later than that day's midnight.

`catalog` holds the companies and area codes, `traffic` draws the calls, `visits` the marketing
fields of each, and `dataset` writes them under the demo account.
"""

from phonewagon_server.demo.dataset import (
    DEMO_ACCOUNT_NAME,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_USER_EMAIL,
    DEMO_USER_PASSWORD,
    DemoData,
    load_demo,
)
from phonewagon_server.demo.traffic import BUSY_DAYS, DAY_MS, HISTORY_START_MS

__all__ = [
    "BUSY_DAYS",
    "DAY_MS",
    "DEMO_ACCOUNT_NAME",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_USER_EMAIL",
    "DEMO_USER_PASSWORD",
    "HISTORY_START_MS",
    "DemoData",
    "load_demo",
]
