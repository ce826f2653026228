"""Sign-in with an API key, sign-out."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from api.console import blp
from api.console import session as console_session


def _safe_next(target: str | None) -> str:
    # Only back into the console: never an open redirect to another site.
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return url_for("console.runs_list")


@blp.route("/")
def home():
    return redirect(url_for("console.runs_list"))


@blp.route("/sign-in", methods=["GET"])
def sign_in_form():
    return render_template("console/sign_in.html", next=request.args.get("next", ""))


@blp.route("/sign-in", methods=["POST"])
def sign_in():
    principal = console_session.sign_in(request.form.get("key", ""))
    if principal is None:
        return render_template("console/sign_in.html", next=request.form.get("next", ""),
                               error="That key was not accepted (unknown, revoked or "
                                     "expired)."), 401
    return redirect(_safe_next(request.form.get("next")))


@blp.route("/sign-out", methods=["POST"])
def sign_out():
    console_session.sign_out()
    return redirect(url_for("console.sign_in_form"))
