"""The recurring exchange work of every point-site tenant, each at today's date in its own
time zone: fulfilment (every few minutes) and expiry (daily). Safe to run at any time, twice
at once: claims and outcomes are guarded, batches held, expiry keyed per member and date."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine

from settlement.db import tenant_session
from settlement.exchanges.amazon import IncentivesClient
from settlement.exchanges.codes import code_key
from settlement.exchanges.expiry import expire_points
from settlement.exchanges.fulfil import Partners, fulfil_exchanges
from settlement.models import Tenant
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import policy_of


def partners_from(settings) -> Partners:
    return Partners(amazon=IncentivesClient.from_settings(settings), outbox=settings.outbox_dir,
                    code_key=code_key(settings), amazon_partner_id=settings.amazon_partner_id)


def _tenants(engine: Engine, slug: str | None) -> list[tuple[int, str, TenantPolicy]]:
    with tenant_session(engine) as session:
        query = select(Tenant).order_by(Tenant.id)
        if slug is not None:
            query = query.where(Tenant.slug == slug)
        return [(t.id, t.slug, policy_of(t)) for t in session.scalars(query)]


def local_today(policy: TenantPolicy) -> dt.date:
    return dt.datetime.now(ZoneInfo(policy.timezone)).date()


def fulfil_all(engine: Engine, settings, slug: str | None = None,
               today: dt.date | None = None) -> dict[str, dict]:
    partners = partners_from(settings)
    return {tenant_slug: fulfil_exchanges(engine, tenant_id, partners,
                                          today or local_today(policy))
            for tenant_id, tenant_slug, policy in _tenants(engine, slug) if policy.exits}


def expire_all(engine: Engine, slug: str | None = None,
               today: dt.date | None = None) -> dict[str, int]:
    expired = {}
    for tenant_id, tenant_slug, policy in _tenants(engine, slug):
        if policy.points.expiry is None:
            continue
        with tenant_session(engine, tenant_id) as session:
            posted = expire_points(session, tenant_id, policy, today or local_today(policy))
            session.commit()
        expired[tenant_slug] = len(posted)
    return expired
