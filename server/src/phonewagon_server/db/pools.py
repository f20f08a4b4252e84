"""Website pools: the campaigns whose numbers are handed to visitors, each company's site key
and allowed origins, and the holds of pool numbers (decision 15)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

from phonewagon_server.db.batches import among, rows_table
from phonewagon_server.db.engine import Connection


@dataclass(frozen=True, slots=True)
class Pool:
    campaign_id: str
    swap_target: str  # E.164: the business number printed on the site


@dataclass(frozen=True, slots=True)
class Site:
    company_id: int
    key: str
    origins: tuple[str, ...]  # none: any origin may record visits
    pools: tuple[Pool, ...] = ()  # read with the site by its key (`site_of_key`)


@dataclass(frozen=True, slots=True)
class Holder:
    company_id: int
    visitor: str


def set_swap_target(tx: Connection, campaign_id: str, swap_target: str) -> None:
    """Make the campaign a pool: its numbers, each with its row of `number_holds`."""
    tx.execute("UPDATE campaigns SET swap_target = ? WHERE id = ?", (swap_target, campaign_id))
    tx.execute(
        "INSERT INTO number_holds (number, company_id, campaign_id)"
        " SELECT number, company_id, campaign_id FROM tracking_numbers WHERE campaign_id = ?"
        " ORDER BY number ON CONFLICT (number) DO NOTHING",
        (campaign_id,),
    )


def swap_targets(tx: Connection, account_id: int) -> dict[str, str]:
    """The account's pools: campaign id → swap target."""
    rows = tx.fetchall(
        "SELECT id, swap_target FROM campaigns WHERE account_id = ? AND swap_target IS NOT NULL",
        (account_id,),
    )
    return {row[0]: row[1] for row in rows}


def list_pools(tx: Connection, company_id: int) -> list[Pool]:
    rows = tx.fetchall(
        "SELECT id, swap_target FROM campaigns"
        " WHERE company_id = ? AND swap_target IS NOT NULL ORDER BY id",
        (company_id,),
    )
    return [Pool(campaign_id=row[0], swap_target=row[1]) for row in rows]


def is_pool(tx: Connection, campaign_id: str) -> bool:
    row = tx.fetchone("SELECT swap_target FROM campaigns WHERE id = ?", (campaign_id,))
    return row is not None and row[0] is not None


def site_of_company(tx: Connection, company_id: int) -> Site | None:
    row = tx.fetchone(
        "SELECT company_id, site_key, origins FROM dni_sites WHERE company_id = ?", (company_id,)
    )
    return _site(row) if row else None


def site_of_key(tx: Connection, key: str) -> Site | None:
    """The site of a public key, with its company's pools."""
    row = tx.fetchone(
        "SELECT company_id, site_key, origins FROM dni_sites WHERE site_key = ?", (key,)
    )
    if row is None:
        return None
    site = _site(row)
    return replace(site, pools=tuple(list_pools(tx, site.company_id)))


def add_site(tx: Connection, company_id: int, key: str, *, now: int) -> Site:
    """The company's site, made with `key` unless it has one already."""
    tx.execute(
        "INSERT INTO dni_sites (company_id, site_key, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (company_id) DO NOTHING",
        (company_id, key, now),
    )
    site = site_of_company(tx, company_id)
    if site is None:
        raise LookupError(f"company {company_id} has no site after adding it")
    return site


def ensure_site(tx: Connection, company_id: int, *, now: int) -> Site:
    """The company's site, its public key made now unless it has one (with its first pool)."""
    return site_of_company(tx, company_id) or add_site(
        tx, company_id, "pwk_" + secrets.token_urlsafe(18), now=now
    )


def set_origins(tx: Connection, company_id: int, origins: tuple[str, ...]) -> None:
    tx.execute(
        "UPDATE dni_sites SET origins = ? WHERE company_id = ?", (" ".join(origins), company_id)
    )


def visit_key(tx: Connection) -> str:
    row = tx.fetchone("SELECT secret FROM web_keys WHERE name = 'dni_visit'")
    if row is None:
        raise LookupError("the visit key is missing: migration 6 makes it")
    return str(row[0])


@dataclass(frozen=True, slots=True)
class Hold:
    """A pool number held by a visitor of a company, until `held_until` (epoch ms)."""

    number: str
    campaign_id: str
    company_id: int
    visitor: str
    address: str
    held_until: int


@dataclass(frozen=True, slots=True)
class NewHold:
    number: str
    company_id: int
    visitor: str
    address: str
    started_at: int
    held_until: int


def lock_visitors(tx: Connection, visitors: Iterable[tuple[int, str]]) -> None:
    """On PostgreSQL, one transaction at a time per visitor (company, visitor): two page views
    of one visitor at once must not each take a number. Taken in one order, in one statement:
    two batches wait for each other, never deadlock. (SQLite's write lock serialises them.)"""
    if tx.dialect != "postgresql":
        return
    keys = sorted({_lock_key(f"dni-visitor:{company}:{visitor}") for company, visitor in visitors})
    if keys:
        tx.fetchall(
            "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(? AS BIGINT[])) AS k", (keys,)
        )


_HOLDS = (
    "SELECT h.number, h.campaign_id, h.company_id, h.visitor, h.address, h.held_until"
    " FROM number_holds h"
    # A number removed from its pool, or moved to another, holds nothing any more.
    " JOIN tracking_numbers t ON t.number = h.number AND t.campaign_id = h.campaign_id"
)


def holds_of_visitors(
    tx: Connection, company_ids: Collection[int], visitors: Collection[str], *, now: int
) -> list[Hold]:
    """The live holds of these visitors of these companies (and of other pairs of them)."""
    return _live_holds(tx, company_ids, "h.visitor", visitors, now=now)


def holds_of_addresses(
    tx: Connection, company_ids: Collection[int], addresses: Collection[str], *, now: int
) -> list[Hold]:
    """The live holds of the visitors at these addresses of these companies."""
    return _live_holds(tx, company_ids, "h.address", addresses, now=now)


def free_numbers(
    tx: Connection, campaign_ids: Collection[str], *, now: int, most: int
) -> dict[str, list[str]]:
    """Up to `most` free numbers of each pool, least recently used first, locked.

    On PostgreSQL, `SKIP LOCKED` passes over the numbers other transactions are taking right
    now: each of them commits its holds on its own, so none is handed out twice, and neither
    waits for the other. (SQLite's write lock serialises them.)
    """
    # Each pool's free numbers walked in order (`number_holds_free`), only as far as needed.
    lock = " FOR UPDATE OF h SKIP LOCKED" if tx.dialect == "postgresql" else ""
    first_free = (
        "SELECT h.held_until, h.number FROM number_holds h"
        " JOIN tracking_numbers t ON t.number = h.number AND t.campaign_id = h.campaign_id"
        " WHERE h.campaign_id = {pool} AND h.held_until <= ? ORDER BY h.held_until, h.number"
        f" LIMIT ?{lock}"
    )
    if tx.dialect == "postgresql":
        rows = tx.fetchall(
            "SELECT pool.id, free.held_until, free.number FROM unnest(CAST(? AS TEXT[])) AS"
            f" pool(id) CROSS JOIN LATERAL ({first_free.format(pool='pool.id')}) AS free",
            [list(campaign_ids), now, most],
        )
    else:
        each = f"SELECT ? AS id, held_until, number FROM ({first_free.format(pool='?')})"
        rows = tx.fetchall(
            " UNION ALL ".join(each for _ in campaign_ids),
            [value for pool in campaign_ids for value in (pool, pool, now, most)],
        )
    free: dict[str, list[str]] = {}
    for campaign_id, _, number in sorted(rows):
        free.setdefault(str(campaign_id), []).append(str(number))
    return free


def extend_holds(tx: Connection, numbers: Collection[str], *, until: int) -> None:
    """The current holds of `numbers` last until `until`."""
    of_numbers, params = among(tx, "number", numbers, "TEXT")
    tx.execute(
        "UPDATE dni_holds SET held_until = ?"
        f" WHERE id IN (SELECT hold_id FROM number_holds WHERE {of_numbers})",
        [until, *params],
    )
    tx.execute(f"UPDATE number_holds SET held_until = ? WHERE {of_numbers}", [until, *params])


def start_holds(tx: Connection, holds: Sequence[NewHold]) -> None:
    """Each hold kept (`dni_holds`, which attributes calls) and made its number's current one."""
    if not holds:
        return
    new, params = rows_table(
        tx,
        ("TEXT", "BIGINT", "TEXT", "BIGINT", "BIGINT"),
        [(h.number, h.company_id, h.visitor, h.started_at, h.held_until) for h in holds],
    )
    rows = tx.fetchall(
        "INSERT INTO dni_holds (number, company_id, visitor, started_at, held_until)"
        f" SELECT * FROM {new} RETURNING id, number",
        params,
    )
    hold_ids = {str(number): int(hold_id) for hold_id, number in rows}
    current, params = rows_table(
        tx,
        ("TEXT", "TEXT", "TEXT", "BIGINT", "BIGINT"),
        [(h.number, h.visitor, h.address, hold_ids[h.number], h.held_until) for h in holds],
    )
    tx.execute(
        "UPDATE number_holds SET visitor = v.column2, address = v.column3,"
        " hold_id = v.column4, held_until = v.column5"
        f" FROM {current} WHERE number_holds.number = v.column1",
        params,
    )


def holder_at(tx: Connection, number: str, at: int) -> Holder | None:
    """Who held `number` at `at` (epoch ms): the latest hold begun by then and not over."""
    row = tx.fetchone(
        "SELECT company_id, visitor FROM dni_holds"
        " WHERE number = ? AND started_at <= ? AND held_until >= ?"
        " ORDER BY started_at DESC, id DESC LIMIT 1",
        (number, at, at),
    )
    return Holder(company_id=int(row[0]), visitor=row[1]) if row else None


def delete_holds_before(tx: Connection, before: int, *, limit: int) -> int:
    """Up to `limit` holds over before `before`; how many were deleted."""
    return tx.execute(
        "DELETE FROM dni_holds WHERE id IN (SELECT id FROM dni_holds WHERE held_until < ? LIMIT ?)",
        (before, limit),
    )


def _live_holds(
    tx: Connection, company_ids: Collection[int], column: str, values: Collection[str], *, now: int
) -> list[Hold]:
    of_companies, company_params = among(tx, "h.company_id", company_ids, "BIGINT")
    of_values, value_params = among(tx, column, values, "TEXT")
    rows = tx.fetchall(
        f"{_HOLDS} WHERE {of_companies} AND {of_values} AND h.held_until > ?",
        [*company_params, *value_params, now],
    )
    return [Hold(str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4]), int(r[5])) for r in rows]


def _lock_key(name: str) -> int:
    """A name's advisory lock: 64 bits of its hash, the same in every process."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


def _site(row: tuple[object, ...]) -> Site:
    origins = str(row[2])
    return Site(company_id=int(str(row[0])), key=str(row[1]), origins=tuple(origins.split()))
