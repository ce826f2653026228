"""CJ corrections whose original the engine never saw (commissions/corrections.py): kept
aside as unmatched, listed as unknown_original, moving no money until the original arrives;
then applied once. Records in CJ's commission detail shape, with its sub-cent amounts."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.models import Commission
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import apply_policy
from tests.conftest import TenantHandle, policy_document
from tests.domain.helpers import (
    add_members,
    add_retailer,
    add_rule,
    balances,
    errors_of,
    ingest,
    ledger_problems,
)

AS_OF = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)


def _tenant(engine) -> TenantHandle:
    slug = f"c-{uuid.uuid4().hex[:10]}"
    with Session(engine) as session:
        tenant, _ = apply_policy(session, TenantPolicy.model_validate(policy_document(slug)))
        session.commit()
        handle = TenantHandle(tenant.id, slug, "USD")
    add_retailer(engine, handle, "macys", network_ids={"cj": "4518721"})
    add_rule(engine, handle)  # 50% of the commission
    add_members(engine, handle, "RR000017")
    return handle


def _original(commission_id="3179263458", commission="51.836") -> dict:
    return {"commissionId": commission_id, "orderId": "MCY-88213405", "shopperId": "RR000017",
            "advertiserId": "4518721", "eventDate": "2026-09-03T14:12:45-0700",
            "saleAmountUsd": "1295.90", "pubCommissionAmountUsd": commission,
            "actionStatus": "closed", "validationStatus": "ACCEPTED", "original": True}


def _correction(commission_id="3187734401", original_id="3179263458") -> dict:
    return {**_original(commission_id, "-25.918"), "saleAmountUsd": "-647.95",
            "original": False, "originalActionId": original_id,
            "correctionReason": "RETURNED_MERCHANDISE"}


def _upload(engine, tenant, *records, hours: int = 0):
    body = json.dumps({"data": {"publisherCommissions": {"records": list(records)}}}).encode()
    return ingest(engine, tenant, body, fmt="cj", media="json",
                  as_of=AS_OF + dt.timedelta(hours=hours))


def _available(engine, tenant) -> int:
    return balances(engine, tenant, "RR000017")["available"]


def _awaiting(engine, tenant) -> dict[str, bool]:
    with Session(engine) as session:
        return dict(session.execute(select(Commission.transaction_id,
                                           Commission.awaiting_original)
                                    .where(Commission.tenant_id == tenant.id)).all())


def test_correction_before_its_original_is_unmatched_and_moves_no_money(engine):
    tenant = _tenant(engine)
    report = _upload(engine, tenant, _correction())
    assert report.status == "completed"
    assert (report.inserted, report.unmatched, report.rejected) == (1, 1, 0)
    assert errors_of(engine, tenant, report.id) == [(1, "originalActionId", "unknown_original")]
    assert _available(engine, tenant) == 0
    assert _awaiting(engine, tenant) == {"3187734401": True}
    assert ledger_problems(engine, tenant) == []


def test_unmatched_correction_is_applied_once_when_its_original_arrives(engine):
    tenant = _tenant(engine)
    _upload(engine, tenant, _correction())
    report = _upload(engine, tenant, _original(), hours=1)
    assert (report.inserted, report.unmatched) == (1, 0)
    # 50% of 51.836 = 25.918 -> 25.92; 50% of -25.918 = -12.959 -> -12.96
    assert _available(engine, tenant) == 2592 - 1296
    assert _awaiting(engine, tenant) == {"3179263458": False, "3187734401": False}
    _upload(engine, tenant, _original(), _correction(), hours=2)
    assert _available(engine, tenant) == 2592 - 1296
    assert ledger_problems(engine, tenant) == []


def test_correction_in_the_same_report_as_its_original_is_matched(engine):
    tenant = _tenant(engine)
    report = _upload(engine, tenant, _correction(), _original())
    assert (report.inserted, report.unmatched) == (2, 0)
    assert _available(engine, tenant) == 2592 - 1296


def test_correction_after_its_original_claws_back_at_once(engine):
    tenant = _tenant(engine)
    _upload(engine, tenant, _original())
    report = _upload(engine, tenant, _correction(), hours=1)
    assert report.unmatched == 0
    assert _available(engine, tenant) == 2592 - 1296


def test_unmatched_correction_sent_again_with_its_original_is_released(engine):
    tenant = _tenant(engine)
    _upload(engine, tenant, _correction())
    report = _upload(engine, tenant, _correction(), _original(), hours=1)
    assert (report.inserted, report.unchanged, report.unmatched) == (1, 1, 0)
    assert _available(engine, tenant) == 2592 - 1296
    assert ledger_problems(engine, tenant) == []


def test_cj_corrected_action_status_is_accepted_as_pending_until_locked(engine):
    tenant = _tenant(engine)
    report = _upload(engine, tenant, {**_original(), "actionStatus": "corrected",
                                      "validationStatus": "PENDING"})
    assert report.status == "completed", errors_of(engine, tenant, report.id)
    assert balances(engine, tenant, "RR000017")["pending"] == 2592
