"""The demo data set: one agency account, three companies, their campaigns and ~40,000 calls.

The account's history starts on 2019-09-01 at a few calls a day (so the seed's example request,
`calls?campaign_id=s2212&end_time=1573072575990`, finds a call), then the last 120 days are busy.
Everything follows from `seed` and the UTC day of `now_ms`: a rerun on the same day writes the same
rows, and no call is later than that day's midnight.
"""

from __future__ import annotations

import base64
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from phonewagon_server import credentials
from phonewagon_server.db import accounts, calls, companies
from phonewagon_server.db.calls import STORED_FIELDS
from phonewagon_server.db.engine import Connection, Database
from phonewagon_server.errors import ConfigurationError
from phonewagon_server.models import (
    CALL_STRING_FIELDS,
    Campaign,
    Company,
)

DEMO_ACCOUNT_NAME: Final = "Phonewagon Demo Agency"
# A public credential, printed by `phonewagon-server demo` and in the docs: it opens nothing but
# this demo data, so it is constant and lives in the source on purpose.
DEMO_CLIENT_ID: Final = "pwid_demo3ca97a71410731c3"
DEMO_CLIENT_SECRET: Final = "pwsk_NbRn43oPrmGT-JC_Yx2PqAlprrPdatyPKA6DutiWmSw"  # noqa: S105

DAY_MS: Final = 86_400_000
HISTORY_START_MS: Final = 1_567_296_000_000  # 2019-09-01T00:00:00Z
BUSY_DAYS: Final = 120
BATCH_SIZE: Final = 5_000

_QUIET_DAILY_CALLS = 2.2  # the whole account, on a weekday before the busy period
_BUSY_DAILY_CALLS = 455.0  # the whole account, on the last weekday before now
_WEEKEND_FACTOR = 0.3
_BURST_SHARE = 0.02  # calls that come with 1-3 others in the very same second
_REPEAT_SHARE = 0.45  # calls from someone who already called the company
_RECENT_CALLERS = 300  # a repeat caller is one of the company's last this-many new callers
_NAMED_SHARE = 0.75  # numbers whose caller id shows a city
_UNBOUNCE_SHARE = 0.25  # paid visits that landed on an Unbounce page
# Local hours 0-23: quiet nights, busy business hours.
_HOURLY = (
    *(0.2, 0.1, 0.1, 0.1, 0.2, 0.4),  # 00-05
    *(1, 3, 7, 10, 11, 11),  # 06-11
    *(9, 10, 10, 9, 8, 6),  # 12-17
    *(4, 3, 2, 1.5, 0.8, 0.4),  # 18-23
)
_STATUSES = ("completed", "no-answer", "busy", "failed", "canceled")
_STATUS_WEIGHTS = (85, 8, 3, 2, 2)

# Caller ids come from 555-0100..0199, the fiction range of every area code; the city is what a
# CNAM lookup would show for the area code.
_AREA_CODES = """201 Jersey City NJ, 202 Washington DC, 203 New Haven CT, 205 Birmingham AL,
206 Seattle WA, 207 Portland ME, 208 Boise ID, 209 Stockton CA, 210 San Antonio TX, 212 New York NY,
213 Los Angeles CA, 214 Dallas TX, 215 Philadelphia PA, 216 Cleveland OH, 217 Springfield IL,
218 Duluth MN, 219 Gary IN, 224 Elgin IL, 225 Baton Rouge LA, 228 Gulfport MS, 229 Albany GA,
231 Muskegon MI, 234 Akron OH, 239 Fort Myers FL, 240 Silver Spring MD, 248 Troy MI, 251 Mobile AL,
252 Greenville NC, 253 Tacoma WA, 254 Waco TX, 256 Huntsville AL, 260 Fort Wayne IN,
262 Kenosha WI, 267 Philadelphia PA, 269 Kalamazoo MI, 270 Bowling Green KY, 281 Houston TX,
301 Frederick MD, 302 Wilmington DE, 303 Denver CO, 304 Charleston WV, 305 Miami FL,
307 Cheyenne WY, 308 Grand Island NE, 309 Peoria IL, 310 Santa Monica CA, 312 Chicago IL,
313 Detroit MI, 314 Saint Louis MO, 315 Syracuse NY, 316 Wichita KS, 317 Indianapolis IN,
318 Shreveport LA, 319 Cedar Rapids IA, 320 Saint Cloud MN, 321 Melbourne FL, 323 Los Angeles CA,
325 Abilene TX, 330 Akron OH, 334 Montgomery AL, 336 Greensboro NC, 337 Lafayette LA, 339 Lynn MA,
347 Brooklyn NY, 351 Lowell MA, 352 Gainesville FL, 360 Vancouver WA, 361 Corpus Christi TX,
386 Daytona Beach FL, 401 Providence RI, 402 Omaha NE, 404 Atlanta GA, 405 Oklahoma City OK,
406 Billings MT, 407 Orlando FL, 408 San Jose CA, 409 Beaumont TX, 410 Baltimore MD,
412 Pittsburgh PA, 413 Springfield MA, 414 Milwaukee WI, 415 San Francisco CA, 417 Springfield MO,
419 Toledo OH, 423 Chattanooga TN, 424 Torrance CA, 425 Bellevue WA, 430 Tyler TX, 432 Midland TX,
434 Lynchburg VA, 435 Saint George UT, 440 Lorain OH, 443 Baltimore MD, 469 Dallas TX, 478 Macon GA,
479 Fort Smith AR, 480 Mesa AZ, 484 Allentown PA, 501 Little Rock AR, 502 Louisville KY,
503 Portland OR, 504 New Orleans LA, 505 Albuquerque NM, 507 Rochester MN, 508 Worcester MA,
509 Spokane WA, 510 Oakland CA, 512 Austin TX, 513 Cincinnati OH, 515 Des Moines IA,
516 Hempstead NY, 517 Lansing MI, 518 Albany NY, 520 Tucson AZ, 530 Chico CA, 540 Roanoke VA,
541 Eugene OR, 559 Fresno CA, 561 West Palm Beach FL, 562 Long Beach CA, 563 Davenport IA,
570 Scranton PA, 571 Arlington VA, 573 Columbia MO, 574 South Bend IN, 580 Lawton OK,
585 Rochester NY, 586 Warren MI, 601 Jackson MS, 602 Phoenix AZ, 603 Manchester NH,
605 Sioux Falls SD, 606 Ashland KY, 607 Binghamton NY, 608 Madison WI, 609 Trenton NJ,
610 Allentown PA, 612 Minneapolis MN, 614 Columbus OH, 615 Nashville TN, 616 Grand Rapids MI,
617 Boston MA, 618 Belleville IL, 619 San Diego CA, 620 Dodge City KS, 623 Glendale AZ,
626 Pasadena CA, 630 Naperville IL, 631 Islip NY, 636 O Fallon MO, 646 New York NY,
650 San Mateo CA, 651 Saint Paul MN, 661 Bakersfield CA, 662 Tupelo MS, 678 Atlanta GA,
682 Fort Worth TX, 701 Fargo ND, 702 Las Vegas NV, 703 Arlington VA, 704 Charlotte NC,
706 Augusta GA, 707 Santa Rosa CA, 708 Cicero IL, 712 Sioux City IA, 713 Houston TX, 714 Anaheim CA,
715 Eau Claire WI, 716 Buffalo NY, 717 Lancaster PA, 718 Bronx NY, 719 Colorado Springs CO,
720 Denver CO, 724 New Castle PA, 727 Saint Petersburg FL, 731 Jackson TN, 732 New Brunswick NJ,
734 Ann Arbor MI, 740 Zanesville OH, 747 Burbank CA, 754 Fort Lauderdale FL, 757 Virginia Beach VA,
760 Oceanside CA, 763 Brooklyn Park MN, 765 Lafayette IN, 770 Marietta GA, 772 Port Saint Lucie FL,
773 Chicago IL, 774 Worcester MA, 775 Reno NV, 781 Lynn MA, 785 Topeka KS, 786 Miami FL,
801 Salt Lake City UT, 802 Burlington VT, 803 Columbia SC, 804 Richmond VA, 805 Oxnard CA,
806 Lubbock TX, 808 Honolulu HI, 810 Flint MI, 812 Evansville IN, 813 Tampa FL, 814 Erie PA,
815 Rockford IL, 816 Kansas City MO, 817 Fort Worth TX, 818 Van Nuys CA, 828 Asheville NC,
830 New Braunfels TX, 831 Salinas CA, 832 Houston TX, 843 Charleston SC, 845 Poughkeepsie NY,
847 Evanston IL, 850 Tallahassee FL, 856 Camden NJ, 857 Boston MA, 858 San Diego CA,
859 Lexington KY, 860 Hartford CT, 862 Newark NJ, 863 Lakeland FL, 864 Greenville SC,
865 Knoxville TN, 870 Jonesboro AR, 901 Memphis TN, 903 Tyler TX, 904 Jacksonville FL,
907 Anchorage AK, 908 Elizabeth NJ, 909 San Bernardino CA, 910 Fayetteville NC, 912 Savannah GA,
913 Kansas City KS, 914 Yonkers NY, 915 El Paso TX, 916 Sacramento CA, 917 New York NY,
918 Tulsa OK, 919 Raleigh NC, 920 Green Bay WI, 925 Concord CA, 928 Flagstaff AZ, 929 Bronx NY,
931 Clarksville TN, 937 Dayton OH, 941 Sarasota FL, 949 Irvine CA, 951 Riverside CA,
952 Bloomington MN, 954 Fort Lauderdale FL, 956 Laredo TX, 970 Fort Collins CO, 971 Portland OR,
972 Dallas TX, 973 Newark NJ, 978 Lowell MA, 979 Bryan TX, 980 Charlotte NC, 985 Houma LA,
989 Saginaw MI"""


@dataclass(frozen=True)
class DemoData:
    account_id: int
    client_id: str
    client_secret: str
    companies: list[Company]
    campaigns: list[Campaign]
    calls: int
    created: bool


def _listed(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(","))


@dataclass(frozen=True)
class _CampaignSpec:
    id: str
    name: str  # also the marketing source its tracking number is shown for
    share: float
    tracking_number: str


@dataclass(frozen=True)
class _CompanySpec:
    name: str
    site: str
    utc_offset_hours: int
    share: float
    campaigns: tuple[_CampaignSpec, ...]
    pages: tuple[str, ...]
    keywords: tuple[str, ...]
    ad_campaigns: tuple[str, ...]
    unbounce_pages: tuple[str, ...]


_COMPANIES: Final = (
    _CompanySpec(
        name="Phonewagon",
        site="https://www.phonewagon.example",
        utc_offset_hours=-5,
        share=0.25,
        campaigns=(
            _CampaignSpec("s2210", "Google Ads", 0.36, "+18445550100"),
            _CampaignSpec("s2211", "Bing Ads", 0.10, "+18445550101"),
            _CampaignSpec("s2212", "Facebook", 0.20, "+18445550102"),
            _CampaignSpec("s2213", "Organic search", 0.22, "+18445550103"),
            _CampaignSpec("s2214", "Direct", 0.12, "+18445550104"),
        ),
        pages=_listed(
            "/, /pricing, /features/call-tracking, /features/dynamic-number-insertion,"
            " /integrations/google-ads, /book-a-demo"
        ),
        keywords=_listed(
            "call tracking software, call tracking, phone call tracking,"
            " call tracking for agencies, dynamic number insertion, google ads call tracking,"
            " phonewagon"
        ),
        ad_campaigns=_listed("brand, call-tracking-generic, agencies, competitors"),
        unbounce_pages=_listed(
            "https://try.phonewagon.example/agency-trial, https://try.phonewagon.example/free-trial"
        ),
    ),
    _CompanySpec(
        name="Jake's rake company",
        site="https://www.jakesrakes.example",
        utc_offset_hours=-8,
        share=0.30,
        campaigns=(
            _CampaignSpec("s2220", "Google Ads", 0.38, "+18445550110"),
            _CampaignSpec("s2221", "Facebook", 0.22, "+18445550111"),
            _CampaignSpec("s2222", "Yahoo organic", 0.12, "+18445550112"),
            _CampaignSpec("s2223", "Billboard", 0.13, "+18445550113"),
            _CampaignSpec("s2224", "Direct", 0.15, "+18445550114"),
        ),
        pages=_listed(
            "/, /shop/leaf-rakes, /shop/garden-rakes, /shop/bamboo-rakes, /leaf-cleanup, /contact"
        ),
        keywords=_listed(
            "leaf rake, best leaf rake, garden rake, bamboo rake, rake repair near me,"
            " leaf cleanup service, buy rake online"
        ),
        ad_campaigns=_listed("fall-leaf-season, garden-tools, leaf-cleanup-service"),
        unbounce_pages=_listed(
            "https://deals.jakesrakes.example/fall-sale,"
            " https://deals.jakesrakes.example/leaf-cleanup-quote"
        ),
    ),
    _CompanySpec(
        name="Brightside Family Dental",
        site="https://www.brightsidedental.example",
        utc_offset_hours=-7,
        share=0.45,
        campaigns=(
            _CampaignSpec("s2230", "Google Ads", 0.32, "+18445550120"),
            _CampaignSpec("s2231", "Yelp", 0.16, "+18445550121"),
            _CampaignSpec("s2232", "Organic search", 0.20, "+18445550122"),
            _CampaignSpec("s2233", "Facebook", 0.10, "+18445550123"),
            _CampaignSpec("s2234", "Billboard", 0.10, "+18445550124"),
            _CampaignSpec("s2235", "Direct", 0.12, "+18445550125"),
        ),
        pages=_listed(
            "/, /services/emergency-dentistry, /services/teeth-whitening,"
            " /services/dental-implants, /services/invisalign, /new-patients, /contact"
        ),
        keywords=_listed(
            "emergency dentist, dentist near me, emergency dentist near me, teeth whitening,"
            " dental implants cost, invisalign, pediatric dentist, tooth extraction"
        ),
        ad_campaigns=_listed("emergency-dentist, implants, invisalign, new-patient-special"),
        unbounce_pages=_listed(
            "https://offers.brightsidedental.example/new-patient-special,"
            " https://offers.brightsidedental.example/free-whitening"
        ),
    ),
)

_Call = dict[str, Any]
_Visit = dict[str, str]


def load_demo(database: Database, *, now_ms: int, seed: int = 2212, scale: float = 1.0) -> DemoData:
    """Create the demo account and its data, or return the one already there (`created=False`).

    `scale` multiplies the call volume (tests use a small one); above 1, callers repeat more, as
    the fictional numbers (26,200) run out. Run the migrations first.
    """
    if scale < 0:
        raise ValueError(f"scale must be at least 0, not {scale}")
    with database.transaction(write=True) as tx:
        account_id = _find_demo_account(tx)
        if account_id is not None:
            return _read_demo(tx, account_id)
        rng = random.Random(seed)  # noqa: S311 (made-up demo data: reproducible, not secret)
        return _create_demo(tx, rng=rng, now_ms=now_ms, scale=scale)


def _find_demo_account(tx: Connection) -> int | None:
    """The demo account's id if it is there with its credential active, None if there is none."""
    found = accounts.find_active_secret_hash(tx, DEMO_CLIENT_ID)
    if found is None:
        if any(companies.campaign_exists(tx, k.id) for c in _COMPANIES for k in c.campaigns):
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


def _read_demo(tx: Connection, account_id: int) -> DemoData:
    return DemoData(
        account_id=account_id,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        companies=companies.list_companies(tx, account_id),
        campaigns=companies.list_campaigns(tx, account_id),
        calls=calls.count_calls(tx, account_id),
        created=False,
    )


def _create_demo(tx: Connection, *, rng: random.Random, now_ms: int, scale: float) -> DemoData:
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
    made_companies, made_campaigns = _create_companies(tx, account.id, now=created_at)
    rows = _generate_calls(rng, [c.id for c in made_companies], until_ms=midnight, scale=scale)
    for start in range(0, len(rows), BATCH_SIZE):
        calls.upsert_calls(tx, account.id, rows[start : start + BATCH_SIZE])
    return DemoData(
        account_id=account.id,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        companies=made_companies,
        campaigns=made_campaigns,
        calls=len(rows),
        created=True,
    )


def _create_companies(
    tx: Connection, account_id: int, *, now: int
) -> tuple[list[Company], list[Campaign]]:
    made_companies: list[Company] = []
    made_campaigns: list[Campaign] = []
    for spec in _COMPANIES:
        company = companies.create_company(tx, account_id=account_id, name=spec.name, now=now)
        made_companies.append(company)
        for campaign in spec.campaigns:
            made_campaigns.append(
                companies.create_campaign(
                    tx, company=company, name=campaign.name, campaign_id=campaign.id, now=now
                )
            )
    return made_companies, made_campaigns


def _generate_calls(
    rng: random.Random, company_ids: list[int], *, until_ms: int, scale: float
) -> list[tuple[Any, ...]]:
    """Every call from HISTORY_START_MS to `until_ms`, oldest first, as `STORED_FIELDS` rows."""
    callers = _Callers(rng)
    sids: set[str] = set()
    busy_from = max(until_ms - BUSY_DAYS * DAY_MS, HISTORY_START_MS)
    generated: list[_Call] = []
    for day in range(HISTORY_START_MS, until_ms, DAY_MS):
        mean = scale * _daily_mean(day, busy_from=busy_from, until_ms=until_ms)
        for index, spec in enumerate(_COMPANIES):
            count = _draw_count(rng, mean * spec.share)
            for start_time in _draw_start_times(rng, day, count, spec.utc_offset_hours):
                call = _draw_call(rng, spec, index, callers=callers, sids=sids)
                call.update(company_id=company_ids[index], start_time=start_time)
                generated.append(call)
    kept = sorted(
        (c for c in generated if HISTORY_START_MS <= c["start_time"] < until_ms),
        key=lambda c: int(c["start_time"]),
    )
    _mark_first_time_callers(kept)
    return [tuple(call[field] for field in STORED_FIELDS) for call in kept]


def _daily_mean(day_ms: int, *, busy_from: int, until_ms: int) -> float:
    """Expected calls of the whole account on `day_ms`: quiet, then growing over the busy days."""
    if day_ms < busy_from:
        mean = _QUIET_DAILY_CALLS
    else:
        mean = _BUSY_DAILY_CALLS * (0.55 + 0.45 * (day_ms - busy_from) / (until_ms - busy_from))
    weekday = (day_ms // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return mean * (_WEEKEND_FACTOR if weekday >= 5 else 1.0)


def _draw_count(rng: random.Random, mean: float) -> int:
    """A Poisson draw: exact for small means, its normal approximation for large ones."""
    if mean >= 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    count, product, limit = 0, rng.random(), math.exp(-mean)
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _draw_start_times(rng: random.Random, day_ms: int, count: int, utc_offset: int) -> list[int]:
    """`count` calls over a local day, at whole seconds, mostly in business hours."""
    local_midnight = day_ms - utc_offset * 3_600_000
    times: list[int] = []
    for hour in rng.choices(range(24), weights=_HOURLY, k=count):
        start_time = local_midnight + (hour * 3600 + rng.randrange(3600)) * 1000
        # A few calls bring others in the very same second (a radio spot, a billboard at rush
        # hour), so the data always holds the shared timestamps that paging must get right.
        together = 1 + (rng.randint(1, 3) if rng.random() < _BURST_SHARE else 0)
        times.extend([start_time] * together)
    return sorted(times)


def _draw_call(
    rng: random.Random, spec: _CompanySpec, index: int, *, callers: _Callers, sids: set[str]
) -> _Call:
    campaign = rng.choices(spec.campaigns, weights=[c.share for c in spec.campaigns])[0]
    from_number, contact_name = callers.pick(index)
    status = rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0]
    sid = _draw_sid(rng, sids)
    call: _Call = dict.fromkeys(CALL_STRING_FIELDS, "")
    call.update(_VISITS[campaign.name](rng, spec))
    call.update(
        campaign_id=campaign.id,
        contact_name=contact_name,
        direction="inbound",
        duration=_draw_duration(rng) if status == "completed" else 0,
        from_number=from_number,
        is_first_time_caller=False,
        recording_url=_recording_url(sid) if status == "completed" else "",
        sid=sid,
        status=status,
        to_number=campaign.tracking_number,
    )
    return call


def _draw_sid(rng: random.Random, taken: set[str]) -> str:
    sid = f"CA{rng.getrandbits(128):032x}"
    while sid in taken:
        sid = f"CA{rng.getrandbits(128):032x}"
    taken.add(sid)
    return sid


def _draw_duration(rng: random.Random) -> int:
    """Seconds of an answered call: log-normal around a 90 s median, from 1 s to 2 h."""
    return max(1, min(7200, round(math.exp(rng.gauss(math.log(90), 0.9)))))


def _recording_url(sid: str) -> str:
    return f"https://api.phonewagon.example/call-recordings/{sid}/file"


def _mark_first_time_callers(ordered: list[_Call]) -> None:
    seen: set[str] = set()
    for call in ordered:
        call["is_first_time_caller"] = call["from_number"] not in seen
        seen.add(call["from_number"])


class _Callers:
    """Who calls: a number never seen before, or one of the company's recent callers again."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._fresh = _fictional_numbers()
        rng.shuffle(self._fresh)
        self._names: dict[str, str] = {}
        self._recent: list[list[str]] = [[] for _ in _COMPANIES]
        self._everyone: list[str] = []

    def pick(self, company_index: int) -> tuple[str, str]:
        """(from_number, contact_name) of the next caller of company `company_index`."""
        recent = self._recent[company_index] or self._everyone
        if self._fresh and (not recent or self._rng.random() >= _REPEAT_SHARE):
            number, city = self._fresh.pop()
            self._names[number] = city if self._rng.random() < _NAMED_SHARE else ""
            self._everyone.append(number)
            self._recent[company_index].append(number)
        else:
            number = recent[-1 - self._rng.randrange(min(len(recent), _RECENT_CALLERS))]
        return number, self._names[number]


def _fictional_numbers() -> list[tuple[str, str]]:
    """(E.164 number, caller-id name) for 555-0100..0199 of every listed area code."""
    numbers: list[tuple[str, str]] = []
    for entry in _listed(_AREA_CODES):
        area_code, place = entry.split(" ", 1)
        city, state = place.rsplit(" ", 1)
        # Caller id as the seed shows it: the city padded to 13 characters, then the state.
        name = f"{city[:12]:<13}{state.title()}"
        numbers += [(f"+1{area_code}55501{line:02d}", name) for line in range(100)]
    return numbers


def _token(rng: random.Random, length: int) -> str:
    """`length` random URL-safe characters, like the click ids ad platforms append."""
    return base64.urlsafe_b64encode(rng.randbytes(length)).decode()[:length]


def _landing(rng: random.Random, spec: _CompanySpec) -> _Visit:
    """Where a paid click landed: the company's site, or now and then an Unbounce page."""
    if rng.random() >= _UNBOUNCE_SHARE:
        return {"landing_page": spec.site + rng.choice(spec.pages)}
    page = rng.choice(spec.unbounce_pages)
    return {
        "landing_page": page,
        "unbounce_page_id": str(uuid.uuid5(uuid.NAMESPACE_URL, page)),
        "unbounce_variant_id": rng.choice("ab"),
        "unbounce_visitor_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }


def _google_ads_visit(rng: random.Random, spec: _CompanySpec) -> _Visit:
    keyword = rng.choice(spec.keywords)
    return {
        "user_source": "Google Ads",
        "gclid": "Cj0KCQ" + _token(rng, 84),
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": rng.choice(spec.ad_campaigns),
        "utm_term": keyword,
        "keyword": keyword,
        "match_type": rng.choices("epb", weights=(5, 4, 2))[0],
        "ad_position": f"1t{rng.choices((1, 2, 3, 4), weights=(6, 3, 2, 1))[0]}",
        "network": rng.choices("gs", weights=(9, 1))[0],
        "device": rng.choices("mct", weights=(6, 3, 1))[0],
        "referral_value": "https://www.google.com/",
        **_landing(rng, spec),
    }


def _bing_ads_visit(rng: random.Random, spec: _CompanySpec) -> _Visit:
    keyword = rng.choice(spec.keywords)
    return {
        "user_source": "Bing Ads",
        "msclkid": f"{rng.getrandbits(128):032x}",
        "utm_source": "bing",
        "utm_medium": "cpc",
        "utm_campaign": rng.choice(spec.ad_campaigns),
        "utm_term": keyword,
        "keyword": keyword,
        "match_type": rng.choices("epb", weights=(4, 4, 3))[0],
        "network": rng.choices("os", weights=(8, 2))[0],
        "device": rng.choices("mct", weights=(4, 5, 1))[0],
        "referral_value": "https://www.bing.com/",
        **_landing(rng, spec),
    }


def _facebook_visit(rng: random.Random, spec: _CompanySpec) -> _Visit:
    return {
        "user_source": "Facebook",
        "fbclid": "IwAR" + _token(rng, 57),
        "utm_source": "facebook",
        "utm_medium": "paid_social",
        "utm_campaign": rng.choice(spec.ad_campaigns),
        "utm_content": rng.choice(("video-15s", "carousel", "testimonial", "lead-form")),
        "referral_value": rng.choice(("https://m.facebook.com/", "https://l.facebook.com/")),
        **_landing(rng, spec),
    }


_SEARCH_ENGINES = (
    ("Google organic", "https://www.google.com/", 80),
    ("Bing organic", "https://www.bing.com/", 10),
    ("Yahoo organic", "https://search.yahoo.com/", 6),
    ("DuckDuckGo organic", "https://duckduckgo.com/", 4),
)


def _organic_visit(rng: random.Random, spec: _CompanySpec) -> _Visit:
    source, referrer, _ = rng.choices(_SEARCH_ENGINES, weights=[e[2] for e in _SEARCH_ENGINES])[0]
    return _search_visit(rng, spec, source=source, referrer=referrer)


def _yahoo_visit(rng: random.Random, spec: _CompanySpec) -> _Visit:
    return _search_visit(rng, spec, source="Yahoo organic", referrer="https://search.yahoo.com/")


def _search_visit(rng: random.Random, spec: _CompanySpec, *, source: str, referrer: str) -> _Visit:
    return {
        "user_source": source,
        "referral_value": referrer,
        "landing_page": spec.site + rng.choice(spec.pages),
    }


def _yelp_visit(rng: random.Random, spec: _CompanySpec) -> _Visit:
    """A call from the company's Yelp listing: the visit happened on Yelp, not on the site."""
    slug = re.sub(r"[^a-z0-9]+", "-", spec.name.lower().replace("'", "")).strip("-")
    return {"user_source": "Yelp", "referral_value": f"https://www.yelp.com/biz/{slug}"}


def _offline_visit(source: str) -> Callable[[random.Random, _CompanySpec], _Visit]:
    """A number seen away from the web (a billboard, typed in directly): only the source."""

    def visit(rng: random.Random, spec: _CompanySpec) -> _Visit:
        return {"user_source": source}

    return visit


_VISITS: Final[dict[str, Callable[[random.Random, _CompanySpec], _Visit]]] = {
    "Google Ads": _google_ads_visit,
    "Bing Ads": _bing_ads_visit,
    "Facebook": _facebook_visit,
    "Organic search": _organic_visit,
    "Yahoo organic": _yahoo_visit,
    "Yelp": _yelp_visit,
    "Billboard": _offline_visit("Billboard"),
    "Direct": _offline_visit("Direct"),
}
