"""Event dates in the tenant's calendar: without an offset a network's date-time is the
tenant's local time; with one it is converted to the tenant's time zone before rules,
promotions and cut-offs see it."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from settlement.reports.formats import fields as f
from settlement.reports.formats.base import ParseContext
from tests.domain.helpers import add_members, add_retailer, add_rule, balances, ingest

AS_OF = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("raw,zone,day", [
    ("2026-06-30T22:30:00-07:00", "America/New_York", dt.date(2026, 7, 1)),
    ("2026-06-30T22:30:00-07:00", "America/Los_Angeles", dt.date(2026, 6, 30)),
    ("2026-06-30T20:00:00Z", "Asia/Tokyo", dt.date(2026, 7, 1)),
    ("2026-06-30T23:30:00", "Asia/Tokyo", dt.date(2026, 6, 30)),
    ("2026-06-30T23:30:00", "Pacific/Honolulu", dt.date(2026, 6, 30)),
    ("2026-06-30", "Asia/Tokyo", dt.date(2026, 6, 30)),
])
def test_event_date_is_the_tenants_calendar_day(raw, zone, day):
    ctx = ParseContext("USD", 2, dt.date(2026, 11, 24), zone=ZoneInfo(zone))
    errors: list = []
    assert f.date(raw, 1, "EventDate", ctx, errors) == day
    assert errors == []


def test_promotion_starting_on_the_tenants_day_applies_to_a_sale_late_the_evening_before_utc(
        make_tenant, engine):
    tenant = make_tenant("USD")  # America/New_York
    add_retailer(engine, tenant, "sephora", network_ids={"impact": "7721"})
    add_rule(engine, tenant, rate="10")
    add_rule(engine, tenant, rate="60", priority=5, valid_from=dt.date(2026, 7, 1))
    add_members(engine, tenant, "RR000121")
    # 22:30 in Los Angeles on June 30 is 01:30 on July 1 in New York: the promotion's day.
    action = {"Id": "7721.1", "SubId1": "RR000121", "CampaignId": "7721",
              "EventDate": "2026-06-30T22:30:00-07:00", "Amount": "100.00",
              "Payout": "10.00", "Currency": "USD", "State": "APPROVED"}
    ingest(engine, tenant, json.dumps([action]).encode(), fmt="impact", media="json",
           as_of=AS_OF)
    assert balances(engine, tenant, "RR000121")["available"] == 600
