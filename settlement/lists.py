"""A tenant's objects a page at a time, for consoles and scripts: reports, runs, retailers,
share rules, members.

Keyset pages on the tenant's numbers of reports, runs and share rules, the id of the rest
(never OFFSET, which reads every row it skips): `after` is the last key of the previous page, and one row more than asked tells whether another page follows.
Reports and runs come newest first, reference data in the order it was created. Every
query names the tenant.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from settlement.models import Member, Report, Retailer, RetailerNetworkId, SettlementRun, ShareRule


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_after: int | None  # the cursor of the next page; None: this was the last


def _page(session: Session, query: Select, id_column, after: int | None, limit: int,
          newest_first: bool = False) -> Page:
    """`id_column`: the key pages go by, the tenant's `number` where the rows have one
    (the cursor then shows nothing about other tenants), else the internal id."""
    if after:
        query = query.where(id_column < after if newest_first else id_column > after)
    query = query.order_by(id_column.desc() if newest_first else id_column).limit(limit + 1)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, getattr(rows[-1], id_column.key) if more else None)


def reports_page(session: Session, tenant_id: int, *, status: str | None, fmt: str | None,
                 since: dt.datetime | None, after: int | None, limit: int) -> Page:
    """Uploaded reports, newest first; `since`: received at or after that moment."""
    query = select(Report).where(Report.tenant_id == tenant_id)
    if status:
        query = query.where(Report.status == status)
    if fmt:
        query = query.where(Report.format == fmt)
    if since:
        # In UTC: SQLite keeps the times as UTC text and compares them as text.
        query = query.where(Report.created_at >= since.astimezone(dt.timezone.utc))
    # Only stored reports have a number (and are listed): not one still being received.
    query = query.where(Report.number.is_not(None))
    return _page(session, query, Report.number, after, limit, newest_first=True)


def runs_page(session: Session, tenant_id: int, *, status: str | None,
              after: int | None, limit: int) -> Page:
    query = select(SettlementRun).where(SettlementRun.tenant_id == tenant_id)
    if status:
        query = query.where(SettlementRun.status == status)
    return _page(session, query, SettlementRun.number, after, limit, newest_first=True)


def retailers_page(session: Session, tenant_id: int, *, after: int | None,
                   limit: int) -> Page:
    return _page(session, select(Retailer).where(Retailer.tenant_id == tenant_id),
                 Retailer.id, after, limit)


def network_ids_of_many(session: Session, tenant_id: int,
                        retailer_ids: list[int]) -> dict[int, dict[str, str]]:
    """Each retailer's network ids, for a page of retailers in one query."""
    found: dict[int, dict[str, str]] = {r: {} for r in retailer_ids}
    if retailer_ids:
        for retailer_id, source, external in session.execute(select(
                RetailerNetworkId.retailer_id, RetailerNetworkId.source,
                RetailerNetworkId.external_id).where(
                RetailerNetworkId.tenant_id == tenant_id,
                RetailerNetworkId.retailer_id.in_(retailer_ids))):
            found[retailer_id][source] = external
    return found


def retailer_id_of(session: Session, tenant_id: int, slug: str) -> int | None:
    return session.scalar(select(Retailer.id).where(Retailer.tenant_id == tenant_id,
                                                    Retailer.slug == slug))


def retailer_slugs(session: Session, tenant_id: int, retailer_ids: set[int]) -> dict[int, str]:
    if not retailer_ids:
        return {}
    return dict(session.execute(select(Retailer.id, Retailer.slug).where(
        Retailer.tenant_id == tenant_id, Retailer.id.in_(sorted(retailer_ids)))).all())


def share_rules_page(session: Session, tenant_id: int, *, retailer_id: int | None,
                     active_on: dt.date | None, after: int | None, limit: int) -> Page:
    """Share rules; `retailer_id`: that retailer's own rules; `active_on`: the rules in
    force on that date (valid_from on or before it, valid_to after it)."""
    query = select(ShareRule).where(ShareRule.tenant_id == tenant_id)
    if retailer_id is not None:
        query = query.where(ShareRule.retailer_id == retailer_id)
    if active_on is not None:
        query = query.where(or_(ShareRule.valid_from.is_(None), ShareRule.valid_from <= active_on),
                            or_(ShareRule.valid_to.is_(None), ShareRule.valid_to > active_on))
    return _page(session, query, ShareRule.number, after, limit)


def members_page(session: Session, tenant_id: int, *, prefix: str | None,
                 after: int | None, limit: int) -> Page:
    """Members; `prefix`: those whose external id starts with it (exactly, case and all:
    external ids are case-sensitive)."""
    query = select(Member).where(Member.tenant_id == tenant_id)
    if prefix:
        # LIKE can use an index; SQLite's LIKE ignores ASCII case, so substr decides.
        query = query.where(Member.external_id.startswith(prefix, autoescape=True),
                            func.substr(Member.external_id, 1, len(prefix)) == prefix)
    return _page(session, query, Member.id, after, limit)
