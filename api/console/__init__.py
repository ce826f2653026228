"""The finance operators' console at /console/: server-rendered pages (Jinja) over the
same domain functions and tenant scoping as the API, a little plain JavaScript for live
progress and sorting, every asset served by the app (no build step, no CDN)."""
from __future__ import annotations

from flask import Blueprint, Flask, g, render_template, request, url_for

from api.console import format as fmt
from api.console import session as console_session
from api.database import db
from settlement.models import Tenant
from settlement.tenants.service import policy_of

blp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
                static_folder="static", static_url_path="/static")


@blp.before_request
def _csrf():
    if request.method == "POST" and not console_session.csrf_ok():
        return render_template("console/error.html", status=400, message=(
            "This form has expired or did not come from the console (no valid CSRF "
            "token). Reload the page and try again.")), 400
    return None


@blp.after_request
def _headers(response):
    # Pages with money on them: never cached, never framed, no scripts but our own.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'")
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def tenant_view():
    """The signed-in key's tenant and policy, once per request."""
    if "console_tenant" not in g:
        tenant = db().get(Tenant, g.principal.tenant_id)
        g.console_tenant = (tenant, policy_of(tenant))
    return g.console_tenant


@blp.app_template_global()
def money(minor):
    _, policy = tenant_view()
    return fmt.money(minor, policy.currency, policy.minor_digits)


@blp.app_template_global()
def moment(value):
    _, policy = tenant_view()
    return fmt.moment(value, policy.timezone)


@blp.app_template_global()
def page_url(**changes):
    """This page's URL with some query arguments changed (None removes one)."""
    args = request.args.to_dict()
    args.update(changes)
    return url_for(request.endpoint, **(request.view_args or {}),
                   **{k: v for k, v in args.items() if v is not None})


@blp.context_processor
def _globals():
    principal = g.get("principal")
    return {"principal": principal, "csrf_token": console_session.csrf_token,
            "tenant": tenant_view()[0] if principal else None}


def init_app(app: Flask, settings) -> None:
    from api.console import views  # noqa: F401 - registers the pages on blp
    console_session.init_app(app, settings)
    app.register_blueprint(blp)
