"""A point site's member page lists the member's exchanges in yen and points; a cash-back
tenant's has no such section."""
from __future__ import annotations

from tests.console.test_console_pages import signed_in
from tests.exchanges.conftest import BANK, earn, points_tenant  # noqa: F401 - a fixture


def test_a_point_sites_member_page_lists_exchanges_in_yen(app, engine, points_tenant):
    tenant = points_tenant()
    earn(engine, tenant, "M1", 5000)
    client = app.test_client()
    response = client.post("/v1/members/M1/exchanges", json={
        "exit": "bank", "value": 1000, "destination": {**BANK, "bank_code": "0009"}},
        headers={**tenant.auth("operator"), "Idempotency-Key": "k1"})
    assert response.status_code == 201, response.get_json()
    page = signed_in(app, tenant.keys["operator"]).get("/console/members/M1").get_data(
        as_text=True)
    assert 'id="exchanges"' in page and "requested" in page
    assert '<td class="num" data-value="1000">¥1,000</td>' in page
    assert '<td class="num" data-value="330">330</td>' in page  # the fee, in points


def test_a_cashback_tenants_member_page_has_no_exchanges_section(app, make_tenant):
    tenant = make_tenant()
    client = app.test_client()
    assert client.put("/v1/members/M1", json={"name": "One"},
                      headers=tenant.auth("admin")).status_code == 200
    page = signed_in(app, tenant.keys["operator"]).get("/console/members/M1").get_data(
        as_text=True)
    assert 'id="exchanges"' not in page
