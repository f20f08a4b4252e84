"""Version 7 (2026-12): every pool number has its row of `number_holds` from the start.

Until now a page view added the rows its company's pool numbers lacked, at every page view;
now adding a number to a pool, or making a campaign a pool, adds them. The rows that page views
had not added yet are added here. A pool's free numbers are read in their order of use, the
number breaking ties, so the index that finds them holds the number too. Written out as it
was."""

from __future__ import annotations

STATEMENTS = (
    "INSERT INTO number_holds (number, company_id, campaign_id)"
    " SELECT t.number, t.company_id, t.campaign_id FROM tracking_numbers t"
    " JOIN campaigns c ON c.id = t.campaign_id WHERE c.swap_target IS NOT NULL"
    " ORDER BY t.number ON CONFLICT (number) DO NOTHING",
    "DROP INDEX number_holds_free",
    "CREATE INDEX number_holds_free ON number_holds (campaign_id, held_until, number)",
)
