"""The held-referrals review in the console: the list names the reason, an operator
approves or rejects with the page's CSRF token, an approver key sees no buttons."""
from __future__ import annotations

from tests.console.test_console_pages import csrf_of, signed_in
from tests.referrals.test_api import Api
from tests.referrals.helpers import row


def test_an_operator_reviews_held_referrals_in_the_console(app, client, engine):
    api = Api(client, engine)
    api.member("R1", paypal_email="shared@example.com", payout_method="paypal")
    api.member("F1", referred_by="R1", address_line1="9 Elm St",
               paypal_email="shared@example.com")
    api.member("F2", referred_by="R1")  # R1's own mailing address
    api.upload(row("t1", "F1"), row("t2", "F2"))
    approver = signed_in(app, api.keys["approver"])
    page = approver.get("/console/referrals/held").get_data(as_text=True)
    assert "share a payout destination" in page and "share a mailing address" in page
    assert 'value="approve"' not in page
    operator = signed_in(app, api.keys["operator"])
    page = operator.get("/console/referrals/held").get_data(as_text=True)
    token = csrf_of(page)
    assert operator.post("/console/referrals/F1/review", data={
        "decision": "approve", "csrf_token": token}).status_code == 302
    assert operator.post("/console/referrals/F2/review", data={
        "decision": "reject", "csrf_token": token}).status_code == 302
    statuses = {f: api.listed(f)[0]["status"] for f in ("F1", "F2")}
    assert statuses == {"F1": "pending", "F2": "refused"}
    page = operator.get("/console/referrals/held").get_data(as_text=True)
    assert ">F1<" not in page and ">F2<" not in page
    member = operator.get("/console/members/R1").get_data(as_text=True)
    assert ">F1<" in member and "pending" in member
