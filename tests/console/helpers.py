"""A tenant with money to pay, for the console's tests: PayPal and check members who are
paid, and members skipped for being below the minimum or without a mailing address."""
from __future__ import annotations

import re
from decimal import Decimal

from tests.api.conftest import TenantApi
from tests.api.test_runs_api import ADDRESS, BEFORE_CUTOFF, CLIENT_ID, CLIENT_SECRET  # noqa: F401

PAYOUT = "2026-11-15"
METHODS = {"check": {"enabled": True}, "paypal": {"enabled": True}}
# external id -> (member fields, cash back confirmed before the cut-off)
MEMBERS = {
    "pp-ann": ({"payout_method": "paypal", "paypal_email": "ann@example.com"}, "12.00"),
    "pp-bob": ({"payout_method": "paypal", "paypal_email": "bob@example.com"}, "1234.50"),
    "chk": ({"payout_method": "check"}, "20.00"),
    "small": ({"payout_method": "check"}, "3.00"),
    "homeless": ({"payout_method": "check", "address_line1": None}, "9.90"),
}
PAID = {"pp-ann", "pp-bob", "chk"}
POLICY = {"payouts": {"dates": ["02-15", "05-15", "08-15", "11-15"], "minimum": "5.01",
                      "methods": METHODS}}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def payable(api: TenantApi, members: dict = MEMBERS) -> TenantApi:
    api.setup(retailers=("macys",), members=(), rate="10")
    rows = []
    for external_id, (fields, share) in members.items():
        body = {"name": f"Member {external_id}", **ADDRESS, **fields}
        response = api.put_member(external_id, **{k: v for k, v in body.items()
                                                  if v is not None})
        assert response.status_code == 200, response.get_json()
        sale = str(Decimal(share) * 10)
        rows.append(api.row(f"T-{external_id}", member=external_id, sale=sale,
                            commission=sale, status="confirmed"))
    report = api.ingest(*rows, as_of=BEFORE_CUTOFF)
    assert report["counts"]["inserted"] == len(rows), report
    return api


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)
