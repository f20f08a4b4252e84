"""Companies and the campaigns they own."""

from __future__ import annotations

from phonewagon_server.db.engine import Connection, insert_returning_id
from phonewagon_server.models import Campaign, Company


def create_company(tx: Connection, *, account_id: int, name: str, now: int) -> Company:
    company_id = insert_returning_id(
        tx,
        "INSERT INTO companies (account_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
        (account_id, name, now),
    )
    return Company(id=company_id, account_id=account_id, name=name)


def list_companies(tx: Connection, account_id: int) -> list[Company]:
    rows = tx.fetchall(
        "SELECT id, name FROM companies WHERE account_id = ? ORDER BY id", (account_id,)
    )
    return [Company(id=int(r[0]), account_id=account_id, name=r[1]) for r in rows]


def get_company(tx: Connection, company_id: int) -> Company | None:
    row = tx.fetchone("SELECT id, account_id, name FROM companies WHERE id = ?", (company_id,))
    return Company(id=int(row[0]), account_id=int(row[1]), name=row[2]) if row else None


def rename_company(tx: Connection, company_id: int, name: str) -> None:
    tx.execute("UPDATE companies SET name = ? WHERE id = ?", (name, company_id))


def create_campaign(
    tx: Connection, *, company: Company, name: str, campaign_id: str | None, now: int
) -> Campaign:
    """Create a campaign; without `campaign_id`, the next free id of the form `s1001`."""
    if campaign_id is None:
        campaign_id = _next_campaign_id(tx)
    tx.execute(
        "INSERT INTO campaigns (id, account_id, company_id, name, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (campaign_id, company.account_id, company.id, name, now),
    )
    return Campaign(id=campaign_id, company_id=company.id, account_id=company.account_id, name=name)


def campaign_exists(tx: Connection, campaign_id: str) -> bool:
    return tx.fetchone("SELECT 1 FROM campaigns WHERE id = ?", (campaign_id,)) is not None


def list_campaigns(
    tx: Connection, account_id: int, *, company_id: int | None = None
) -> list[Campaign]:
    sql = "SELECT id, company_id, name FROM campaigns WHERE account_id = ?"
    params: list[object] = [account_id]
    if company_id is not None:
        sql += " AND company_id = ?"
        params.append(company_id)
    rows = tx.fetchall(sql + " ORDER BY company_id, id", params)
    return [Campaign(id=r[0], company_id=int(r[1]), account_id=account_id, name=r[2]) for r in rows]


def rename_campaign(tx: Connection, campaign_id: str, name: str) -> None:
    tx.execute("UPDATE campaigns SET name = ? WHERE id = ?", (name, campaign_id))


def get_campaign(tx: Connection, campaign_id: str) -> Campaign | None:
    row = tx.fetchone(
        "SELECT id, company_id, account_id, name FROM campaigns WHERE id = ?", (campaign_id,)
    )
    if row is None:
        return None
    return Campaign(id=row[0], company_id=int(row[1]), account_id=int(row[2]), name=row[3])


def _next_campaign_id(tx: Connection) -> str:
    count = tx.fetchone("SELECT COUNT(*) FROM campaigns")
    number = 1001 + (int(count[0]) if count else 0)
    while campaign_exists(tx, f"s{number}"):
        number += 1
    return f"s{number}"
