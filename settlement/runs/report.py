"""The run report: every paid cent tied to the commissions it came from.

One row per (item, commission confirmed for that member since the cut-off of the member's
last paid item, up to this run's cut-off), one `referral_bonus` row per referral bonus
earned in that same span (settlement/referrals), plus one `adjustment` row per item for what the
commissions do not explain: balance carried over from earlier dates (a member below the
minimum last time, a failed payout returned), claw-backs of reversals netted against new
earnings, and the cents a points conversion leaves in the balance. The item amount is
always the sum of its rows' `cash_back`, so the report adds up.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.models import SettlementRun
from settlement.payouts.csvsafe import amount as numeric_amount, cell
from settlement.referrals.views import bonuses_for_run

COLUMNS = ("run_id", "payout_date", "member", "method", "item_status", "item_amount",
           "points", "provider_item_id", "row_kind", "source", "transaction_id", "retailer",
           "event_date", "confirmed_on", "commission_status", "cash_back")

_ROWS = """
  SELECT i.id AS item_id, m.external_id, i.method, i.status AS item_status, i.amount,
         i.points, i.provider_item_id, c.id AS commission_id, c.source, c.transaction_id,
         rt.slug AS retailer, c.event_date, c.confirmed_on, c.status AS commission_status,
         c.share_amount
  FROM run_items i
  JOIN members m ON m.tenant_id = i.tenant_id AND m.id = i.member_id
  LEFT JOIN commissions c ON c.tenant_id = i.tenant_id AND c.member_id = i.member_id
       AND c.confirmed_on IS NOT NULL AND c.confirmed_on <= :cutoff
       AND c.confirmed_on > COALESCE((
           SELECT max(r2.cutoff_date) FROM run_items i2
           JOIN settlement_runs r2 ON r2.tenant_id = i2.tenant_id AND r2.id = i2.run_id
           WHERE i2.tenant_id = i.tenant_id AND i2.member_id = i.member_id
             AND i2.status = 'succeeded' AND r2.payout_date < :payout_date), :epoch)
  LEFT JOIN retailers rt ON rt.tenant_id = c.tenant_id AND rt.id = c.retailer_id
  WHERE i.tenant_id = :t AND i.run_id = :r
  ORDER BY i.id, c.id"""


def _items(session: Session, tenant_id: int, run: SettlementRun) -> Iterator[tuple[dict, list]]:
    """(item, its commission rows), item by item, streamed."""
    rows = session.execute(text(_ROWS).execution_options(yield_per=5000), {
        "t": tenant_id, "r": run.id, "cutoff": run.cutoff_date,
        "payout_date": run.payout_date, "epoch": dt.date(1900, 1, 1)}).mappings()
    item, commissions = None, []
    for row in rows:
        if item is None or row["item_id"] != item["item_id"]:
            if item is not None:
                yield item, commissions
            item, commissions = dict(row), []
        if row["commission_id"] is not None:
            commissions.append(row)
    if item is not None:
        yield item, commissions


def _explained(commissions: list) -> int:
    return sum(c["share_amount"] for c in commissions if c["commission_status"] == "confirmed")


def report_csv_rows(session: Session, tenant_id: int, run: SettlementRun,
                    digits: int) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    bonuses = bonuses_for_run(session, tenant_id, run)
    for item, commissions in _items(session, tenant_id, run):
        head = [run.id, run.payout_date.isoformat(), cell(item["external_id"]), item["method"],
                item["item_status"], numeric_amount(item["amount"], digits),
                "" if item["points"] is None else item["points"],
                cell(item["provider_item_id"] or "")]
        for c in commissions:
            counted = c["share_amount"] if c["commission_status"] == "confirmed" else 0
            writer.writerow(head + ["commission", cell(c["source"]), cell(c["transaction_id"]),
                                    cell(c["retailer"] or ""), str(c["event_date"]),
                                    str(c["confirmed_on"]), c["commission_status"],
                                    numeric_amount(counted, digits)])
        earned = bonuses.get(item["item_id"], [])
        for b in earned:
            writer.writerow(head + ["referral_bonus", f"referral:{b['side']}",
                                    cell(b["transaction_id"] or ""), "",
                                    str(b["qualified_on"]), str(b["confirmed_on"]), "earned",
                                    numeric_amount(b["amount"], digits)])
        rest = item["amount"] - _explained(commissions) - sum(b["amount"] for b in earned)
        if rest or not (commissions or earned):
            writer.writerow(head + ["adjustment", "", "", "", "", "", "",
                                    numeric_amount(rest, digits)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def report_json(session: Session, tenant_id: int, run: SettlementRun, digits: int) -> dict:
    from settlement.money import format_amount

    items = []
    bonuses = bonuses_for_run(session, tenant_id, run)
    for item, commissions in _items(session, tenant_id, run):
        earned = bonuses.get(item["item_id"], [])
        items.append({
            "member": item["external_id"], "method": item["method"],
            "status": item["item_status"], "amount": format_amount(item["amount"], digits),
            "points": item["points"], "provider_item_id": item["provider_item_id"],
            "commissions": [{"source": c["source"], "transaction_id": c["transaction_id"],
                             "retailer": c["retailer"], "event_date": str(c["event_date"]),
                             "confirmed_on": str(c["confirmed_on"]),
                             "status": c["commission_status"],
                             "cash_back": format_amount(c["share_amount"], digits)}
                            for c in commissions],
            "referral_bonuses": [{"side": b["side"], "friend": b["friend"],
                                  "transaction_id": b["transaction_id"],
                                  "points": b["points"], "points_method": b["points_method"],
                                  "confirmed_on": str(b["confirmed_on"]),
                                  "cash_back": format_amount(b["amount"], digits)}
                                 for b in earned],
            "adjustment": format_amount(item["amount"] - _explained(commissions)
                                        - sum(b["amount"] for b in earned), digits)})
    return {"run_id": run.id, "payout_date": run.payout_date.isoformat(),
            "cutoff_date": run.cutoff_date.isoformat(), "currency": run.currency,
            "status": run.status, "items": items}
