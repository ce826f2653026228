"""Members: search, a member's balance, statement and referrals; the held-referrals
review list with approve and reject."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from api.auth import record
from api.console import blp, tenant_view
from api.console.session import page
from api.console.paging import PAGE_SIZE, after_arg
from api.database import db
from settlement import lists
from settlement.catalog.service import member_by_external_id
from settlement.exchanges.service import list_exchanges
from settlement.ledger.service import member_balances, member_statement
from settlement.models import Commission, Retailer
from settlement.referrals import service as referrals
from settlement.referrals import views as referral_views
from settlement.states import ReferralStatus

STATEMENT_ROWS = 200


@blp.route("/members")
@page("reader")
def members_list():
    prefix = (request.args.get("q") or "").strip()[:128] or None
    found = lists.members_page(db(), g.principal.tenant_id, prefix=prefix,
                               after=after_arg(), limit=PAGE_SIZE)
    return render_template("console/members.html", members=found.rows, q=prefix or "",
                           next_after=found.next_after)


def _commissions(tenant_id: int, member_id: int):
    return db().execute(
        select(Commission, Retailer.slug).join(
            Retailer, (Retailer.tenant_id == Commission.tenant_id)
            & (Retailer.id == Commission.retailer_id))
        .where(Commission.tenant_id == tenant_id, Commission.member_id == member_id)
        .order_by(Commission.event_date.desc(), Commission.id.desc())
        .limit(STATEMENT_ROWS)).all()


@blp.route("/members/<external_id>")
@page("reader")
def member_show(external_id):
    tenant_id = g.principal.tenant_id
    member = member_by_external_id(db(), tenant_id, external_id)
    if member is None:
        return render_template("console/error.html", status=404,
                               message=f"No member {external_id}."), 404
    _, policy = tenant_view()
    return render_template(
        "console/member.html", member=member,
        balances=member_balances(db(), tenant_id, member.id),
        entries=member_statement(db(), tenant_id, member.id, limit=STATEMENT_ROWS),
        commissions=_commissions(tenant_id, member.id),
        referrals=referral_views.member_referrals(db(), tenant_id, policy, member.id),
        # Point sites only; never the gift code (the member's own look-up alone shows it).
        exchanges=list_exchanges(db(), tenant_id, member.id) if policy.exits else None)


@blp.route("/referrals/held")
@page("reader")
def referrals_held():
    _, policy = tenant_view()
    rows = referral_views.list_referrals(db(), g.principal.tenant_id, policy,
                                         status=ReferralStatus.HELD,
                                         after=after_arg() or 0, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render_template("console/referrals_held.html", referrals=rows,
                           next_after=rows[-1]["id"] if more else None,
                           may_review=g.principal.may("operator"))


@blp.route("/referrals/<external_id>/review", methods=["POST"])
@page("operator")
def referral_review(external_id):
    decision = request.form.get("decision")
    tenant_id = g.principal.tenant_id
    friend = member_by_external_id(db(), tenant_id, external_id)
    referral_id = None if friend is None else referrals.referral_of(db(), tenant_id, friend.id)
    if decision not in ("approve", "reject") or referral_id is None:
        flash("No such held referral, or no decision given.", "error")
        return redirect(url_for("console.referrals_held"))
    try:
        referrals.review(db(), tenant_id, referral_id, decision, g.principal.name)
    except referrals.ReferralError as exc:
        db().rollback()
        flash(f"Not done: {exc}", "error")
        return redirect(url_for("console.referrals_held"))
    record(f"referral.{decision}d", "referral", referral_id, {"friend": external_id})
    db().commit()
    flash(f"Referral of {external_id}: {decision}d.", "ok")
    return redirect(url_for("console.referrals_held"))
