"""Tracking numbers: which campaign each number rings in, and where its calls are forwarded."""

from __future__ import annotations

from dataclasses import dataclass

from phonewagon_server.db.engine import Connection, Row


@dataclass(frozen=True, slots=True)
class TrackingNumber:
    number: str  # E.164, unique in the deployment
    account_id: int
    company_id: int
    campaign_id: str
    forward_to: str  # E.164
    source: str  # the calls' `user_source`; '' for the campaign's name


_COLUMNS = "number, account_id, company_id, campaign_id, forward_to, source"


def add_number(tx: Connection, number: TrackingNumber, *, now: int) -> bool:
    """Add `number`; False, changing nothing, if the number is already taken."""
    added = tx.execute(
        f"INSERT INTO tracking_numbers ({_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (number) DO NOTHING",
        (
            number.number,
            number.account_id,
            number.company_id,
            number.campaign_id,
            number.forward_to,
            number.source,
            now,
        ),
    )
    if added == 1:  # a pool's number: its row of `number_holds` (db/pools.py), free
        tx.execute(
            "INSERT INTO number_holds (number, company_id, campaign_id)"
            " SELECT ?, company_id, id FROM campaigns WHERE id = ? AND swap_target IS NOT NULL"
            " ON CONFLICT (number) DO NOTHING",
            (number.number, number.campaign_id),
        )
    return added == 1


def find_number(tx: Connection, number: str) -> TrackingNumber | None:
    row = tx.fetchone(f"SELECT {_COLUMNS} FROM tracking_numbers WHERE number = ?", (number,))
    return _number(row) if row else None


def list_numbers(tx: Connection, account_id: int | None = None) -> list[TrackingNumber]:
    """The account's numbers (every number with no account), by company, campaign and number."""
    sql = f"SELECT {_COLUMNS} FROM tracking_numbers"
    params: tuple[int, ...] = ()
    if account_id is not None:
        sql += " WHERE account_id = ?"
        params = (account_id,)
    rows = tx.fetchall(sql + " ORDER BY account_id, company_id, campaign_id, number", params)
    return [_number(row) for row in rows]


def remove_number(tx: Connection, number: str) -> bool:
    """Remove `number` (its calls stay, and its past holds, which attribute them); False if
    there was none."""
    tx.execute("DELETE FROM number_holds WHERE number = ?", (number,))
    return tx.execute("DELETE FROM tracking_numbers WHERE number = ?", (number,)) == 1


def _number(row: Row) -> TrackingNumber:
    return TrackingNumber(
        number=row[0],
        account_id=int(row[1]),
        company_id=int(row[2]),
        campaign_id=row[3],
        forward_to=row[4],
        source=row[5],
    )
