"""Website pools: the campaigns whose numbers are handed to visitors, each company's site key
and allowed origins, and the holds of pool numbers (decision 15)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from phonewagon_server.db.engine import Connection, insert_returning_id


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


def lock_visitor(tx: Connection, company_id: int, visitor: str) -> None:
    """On PostgreSQL, one transaction at a time per visitor: two page views of one visitor at
    once must not each take a number. (SQLite's write lock already serialises them.)"""
    if tx.dialect == "postgresql":
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('dni-visitor:' || ? || ':' || ?))",
            (str(company_id), visitor),
        )


def held_number(tx: Connection, campaign_id: str, visitor: str, *, now: int) -> str | None:
    """The number of the pool `visitor` holds now, if any."""
    row = tx.fetchone(
        "SELECT h.number FROM number_holds h"
        " JOIN tracking_numbers t ON t.number = h.number AND t.campaign_id = h.campaign_id"
        " WHERE h.campaign_id = ? AND h.visitor = ? AND h.held_until > ? ORDER BY h.number LIMIT 1",
        (campaign_id, visitor, now),
    )
    return str(row[0]) if row else None


def holds_of_visitor(tx: Connection, company_id: int, visitor: str, *, now: int) -> int:
    row = tx.fetchone(
        "SELECT COUNT(*) FROM number_holds WHERE company_id = ? AND visitor = ? AND held_until > ?",
        (company_id, visitor, now),
    )
    return int(row[0]) if row else 0


def live_holds_of_address(tx: Connection, company_id: int, address: str, *, now: int) -> int:
    """How many visitors' holds of the company's pools this address has now."""
    row = tx.fetchone(
        "SELECT COUNT(DISTINCT visitor) FROM number_holds"
        " WHERE company_id = ? AND address = ? AND held_until > ?",
        (company_id, address, now),
    )
    return int(row[0]) if row else 0


def take_free_number(tx: Connection, campaign_id: str, *, now: int) -> str | None:
    """The pool's least recently used free number (one still in the pool), locked.

    On PostgreSQL, `SKIP LOCKED` passes over the numbers other transactions are taking right
    now: each of them commits a hold on its own, so none is handed out twice.
    """
    lock = " FOR UPDATE OF h SKIP LOCKED" if tx.dialect == "postgresql" else ""
    row = tx.fetchone(
        "SELECT h.number FROM number_holds h"
        " JOIN tracking_numbers t ON t.number = h.number AND t.campaign_id = h.campaign_id"
        " WHERE h.campaign_id = ? AND h.held_until <= ?"
        f" ORDER BY h.held_until, h.number LIMIT 1{lock}",
        (campaign_id, now),
    )
    return str(row[0]) if row else None


def start_hold(
    tx: Connection,
    number: str,
    *,
    company_id: int,
    visitor: str,
    address: str,
    now: int,
    until: int,
) -> None:
    hold_id = insert_returning_id(
        tx,
        "INSERT INTO dni_holds (number, company_id, visitor, started_at, held_until)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (number, company_id, visitor, now, until),
    )
    tx.execute(
        "UPDATE number_holds SET visitor = ?, address = ?, hold_id = ?, held_until = ?"
        " WHERE number = ?",
        (visitor, address, hold_id, until, number),
    )


def extend_hold(tx: Connection, number: str, *, until: int) -> None:
    tx.execute(
        "UPDATE dni_holds SET held_until = ?"
        " WHERE id = (SELECT hold_id FROM number_holds WHERE number = ?)",
        (until, number),
    )
    tx.execute("UPDATE number_holds SET held_until = ? WHERE number = ?", (until, number))


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


def _site(row: tuple[object, ...]) -> Site:
    origins = str(row[2])
    return Site(company_id=int(str(row[0])), key=str(row[1]), origins=tuple(origins.split()))
