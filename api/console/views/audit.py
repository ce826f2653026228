"""The audit log: who did what to which object, when; filterable."""
from __future__ import annotations

from flask import g, render_template, request

from api.console import blp
from api.console.session import page
from api.console.paging import PAGE_SIZE, after_arg
from api.database import db
from settlement.audit_log import audit_actions, audit_page

FILTERS = ("action", "principal", "object_type", "object_id")


@blp.route("/audit")
@page("reader")
def audit_list():
    filters = {name: (request.args.get(name) or "").strip()[:200] or None for name in FILTERS}
    found = audit_page(db(), g.principal.tenant_id, **filters, after=after_arg(),
                       limit=PAGE_SIZE)
    return render_template("console/audit.html", events=found.rows,
                           next_after=found.next_after, filters=filters,
                           actions=audit_actions(db(), g.principal.tenant_id))
