"""The run report: every paid cent tied to what it paid, as it was paid.

Each item's rows come from run_item_lines, frozen at planning (settlement/runs/lines.py):
`commission` and `referral_bonus` rows at the amount the item paid them, an `adjustment`
row per correction of something an earlier run paid (naming that commission or bonus and
`earlier_run_id`), and one plain `adjustment` row for what the frozen rows do not explain
(balance carried over, the cents a points conversion leaves in the balance). The item
amount is always the sum of its rows' `cash_back`, and nothing that happens after planning
changes a row: re-reading a paid run's report gives the same bytes, whatever was reversed
since (the run that nets the reversal shows it). Only an item's own status moves, as its
payment does.

After the items, one `skipped` row per member the plan did not pay (no item, no cash
back: the amount left in the balance and the reason). CSV and JSON list the same rows in
the same order.
"""
from __future__ import annotations

import csv
import io
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.models import SettlementRun
from settlement.money import format_amount
from settlement.payouts.csvsafe import amount as numeric_amount, cell

COLUMNS = ("run_id", "payout_date", "member", "method", "item_status", "item_amount",
           "points", "provider_item_id", "row_kind", "source", "transaction_id", "retailer",
           "event_date", "confirmed_on", "commission_status", "cash_back", "earlier_run_id",
           "skip_reason", "skipped_amount")

_KIND_ORDER = ("CASE l.kind WHEN 'commission' THEN 0 WHEN 'referral_bonus' THEN 1 "
               "WHEN 'commission_correction' THEN 2 ELSE 3 END")
_ROWS = f"""
  SELECT i.id AS item_id, m.external_id, i.method, i.status AS item_status, i.amount,
         i.points, i.provider_item_id, l.kind, l.amount AS cash_back, l.status,
         l.confirmed_on, er.number AS earlier_run_id, c.source, c.transaction_id,
         rt.slug AS retailer,
         c.event_date, b.side, b.points AS bonus_points, b.points_method, b.qualified_on,
         f.external_id AS friend
  FROM run_items i
  JOIN members m ON m.tenant_id = i.tenant_id AND m.id = i.member_id
  LEFT JOIN run_item_lines l ON l.tenant_id = i.tenant_id AND l.run_id = i.run_id
       AND l.item_id = i.id
  LEFT JOIN referral_bonuses b ON b.tenant_id = l.tenant_id AND b.id = l.ref_id
       AND l.kind IN ('referral_bonus', 'bonus_correction')
  LEFT JOIN commissions c ON c.tenant_id = l.tenant_id
       AND c.id = CASE WHEN b.id IS NULL THEN l.ref_id ELSE b.commission_id END
  LEFT JOIN retailers rt ON rt.tenant_id = c.tenant_id AND rt.id = c.retailer_id
  LEFT JOIN referrals rf ON rf.tenant_id = b.tenant_id AND rf.id = b.referral_id
  LEFT JOIN members f ON f.tenant_id = rf.tenant_id AND f.id = rf.friend_id
  LEFT JOIN settlement_runs er ON er.tenant_id = l.tenant_id AND er.id = l.earlier_run_id
  WHERE i.tenant_id = :t AND i.run_id = :r
  ORDER BY i.id, {_KIND_ORDER}, l.ref_id"""

_SKIPPED = """
  SELECT s.member_id, m.external_id, m.payout_method, s.reason, s.amount
  FROM run_skips s JOIN members m ON m.tenant_id = s.tenant_id AND m.id = s.member_id
  WHERE s.tenant_id = :t AND s.run_id = :r AND s.member_id > :after {reason}
  ORDER BY s.member_id"""


def _items(session: Session, tenant_id: int, run: SettlementRun) -> Iterator[tuple[dict, list]]:
    """(item, its frozen rows), item by item, streamed."""
    rows = session.execute(text(_ROWS).execution_options(yield_per=5000),
                           {"t": tenant_id, "r": run.id}).mappings()
    item, lines = None, []
    for row in rows:
        if item is None or row["item_id"] != item["item_id"]:
            if item is not None:
                yield item, lines
            item, lines = dict(row), []
        if row["kind"] is not None:
            lines.append(row)
    if item is not None:
        yield item, lines


def skipped_members(session: Session, tenant_id: int, run_id: int, *,
                    reason: str | None = None, after: int = 0,
                    limit: int | None = None) -> list[dict]:
    """The members a run's plan did not pay, in member order: {member_id, member, method,
    reason, amount} (the amount stays in their balance)."""
    sql = _SKIPPED.format(reason="AND s.reason = :reason" if reason else "") + (
        " LIMIT :limit" if limit is not None else "")
    rows = session.execute(text(sql), {"t": tenant_id, "r": run_id, "after": after,
                                       "reason": reason, "limit": limit}).mappings()
    return [{"member_id": r["member_id"], "member": r["external_id"],
             "method": r["payout_method"], "reason": r["reason"], "amount": r["amount"]}
            for r in rows]


def _source(line) -> str:
    return f"referral:{line['side']}" if line["side"] is not None else line["source"]


def _row_kind(line) -> str:
    return line["kind"] if line["kind"] in ("commission", "referral_bonus") else "adjustment"


def _rest(item: dict, lines: list) -> int:
    return item["amount"] - sum(line["cash_back"] for line in lines)


def report_csv_rows(session: Session, tenant_id: int, run: SettlementRun,
                    digits: int) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for item, lines in _items(session, tenant_id, run):
        head = [run.number, run.payout_date.isoformat(), cell(item["external_id"]), item["method"],
                item["item_status"], numeric_amount(item["amount"], digits),
                "" if item["points"] is None else item["points"],
                cell(item["provider_item_id"] or "")]
        for line in lines:
            day = line["qualified_on"] if line["side"] is not None else line["event_date"]
            writer.writerow(head + [
                _row_kind(line), cell(_source(line)), cell(line["transaction_id"] or ""),
                cell(line["retailer"] or "") if line["side"] is None else "", str(day),
                str(line["confirmed_on"]), line["status"],
                numeric_amount(line["cash_back"], digits),
                "" if line["earlier_run_id"] is None else line["earlier_run_id"], "", ""])
        rest = _rest(item, lines)
        if rest or not lines:
            writer.writerow(head + ["adjustment", "", "", "", "", "", "",
                                    numeric_amount(rest, digits), "", "", ""])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    for skip in skipped_members(session, tenant_id, run.id):
        writer.writerow([run.number, run.payout_date.isoformat(), cell(skip["member"]),
                         skip["method"] or "", "skipped", "", "", "", "skipped", "", "", "",
                         "", "", "", "", "", skip["reason"],
                         numeric_amount(skip["amount"], digits)])
    yield buffer.getvalue()


def _commission_view(line, digits: int) -> dict:
    return {"source": line["source"], "transaction_id": line["transaction_id"],
            "retailer": line["retailer"], "event_date": str(line["event_date"]),
            "confirmed_on": str(line["confirmed_on"]), "status": line["status"],
            "cash_back": format_amount(line["cash_back"], digits)}


def _bonus_view(line, digits: int) -> dict:
    return {"side": line["side"], "friend": line["friend"],
            "transaction_id": line["transaction_id"], "points": line["bonus_points"],
            "points_method": line["points_method"], "confirmed_on": str(line["confirmed_on"]),
            "cash_back": format_amount(line["cash_back"], digits)}


def _correction_view(line, digits: int) -> dict:
    shown = _bonus_view(line, digits) if line["side"] is not None \
        else _commission_view(line, digits)
    return {"of": "referral_bonus" if line["side"] is not None else "commission",
            "earlier_run_id": line["earlier_run_id"], **shown, "status": line["status"]}


def report_json(session: Session, tenant_id: int, run: SettlementRun, digits: int) -> dict:
    items = []
    for item, lines in _items(session, tenant_id, run):
        items.append({
            "member": item["external_id"], "method": item["method"],
            "status": item["item_status"], "amount": format_amount(item["amount"], digits),
            "points": item["points"], "provider_item_id": item["provider_item_id"],
            "commissions": [_commission_view(x, digits) for x in lines
                            if x["kind"] == "commission"],
            "referral_bonuses": [_bonus_view(x, digits) for x in lines
                                 if x["kind"] == "referral_bonus"],
            "corrections": [_correction_view(x, digits) for x in lines
                            if x["kind"].endswith("_correction")],
            "adjustment": format_amount(_rest(item, lines), digits)})
    skipped = [{"member": s["member"], "method": s["method"], "reason": s["reason"],
                "amount": format_amount(s["amount"], digits)}
               for s in skipped_members(session, tenant_id, run.id)]
    return {"run_id": run.number, "payout_date": run.payout_date.isoformat(),
            "cutoff_date": run.cutoff_date.isoformat(), "currency": run.currency,
            "status": run.status, "items": items, "skipped": skipped}
