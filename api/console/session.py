"""Signing in to the console: an API key, checked once, exchanged for a signed, HttpOnly,
SameSite=Strict cookie that names the key by its sha256 (never holds it) and expires: the
hash is what binds the database session to the key's tenant (settlement/db.py). Every request
loads the key again, so a revoked or expired key ends its sessions at once; every POST
carries the session's CSRF token."""
from __future__ import annotations

import datetime as dt
import hmac
import secrets
import time
from functools import wraps

from flask import Flask, current_app, g, redirect, render_template, request, session, url_for

from api.database import db
from settlement.access.service import (Principal, audit, authenticate, key_digest,
                                       principal_of_hash)
from settlement.db import bind_key

COOKIE_NAME = "settle_console"
CSRF_FIELD = "csrf_token"


def init_app(app: Flask, settings) -> None:
    app.secret_key = settings.secret_key or secrets.token_hex(32)
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_SECURE=settings.console_secure_cookie,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.console_session_minutes))


def csrf_token() -> str:
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def csrf_ok() -> bool:
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get(CSRF_FIELD, "")
    return bool(sent and expected) and hmac.compare_digest(sent, expected)


def sign_in(key: str) -> Principal | None:
    principal = authenticate(db(), key.strip())  # a revoked or expired key is not found
    if principal is None:
        return None
    session.clear()  # a new session id and CSRF token: nothing carried over from before
    session.permanent = True
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    key_hash = key_digest(key.strip())
    session.update(kid=principal.key_id, kh=key_hash, exp=int(time.time() + lifetime))
    csrf_token()
    bind_key(db(), key_hash)
    audit(db(), principal, "console.signed_in", "api_key", principal.key_id)
    db().commit()
    return principal


def sign_out() -> None:
    session.clear()


def signed_in_principal() -> Principal | None:
    key_hash, expires = session.get("kh"), session.get("exp")
    if not isinstance(key_hash, str) or not isinstance(expires, int) or expires < time.time():
        return None
    principal = principal_of_hash(db(), key_hash)  # None once revoked or expired
    if principal is None:
        return None
    bind_key(db(), key_hash)
    return principal


def page(need: str | None = None):
    """The view needs a signed-in key (whose role grants `need`), scoped to its tenant the
    way the API scopes a bearer key."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = signed_in_principal()
            if principal is None:
                session.pop("kid", None)
                return redirect(url_for("console.sign_in_form", next=request.full_path
                                        if request.method == "GET" else None))
            g.principal = principal
            if need is not None and not principal.may(need):
                return render_template("console/error.html", status=403,
                                       message=f"A {principal.role} key cannot do this."), 403
            return view(*args, **kwargs)
        return wrapper
    return decorate
