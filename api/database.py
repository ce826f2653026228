"""One database session per request, closed (and rolled back if not committed) at its end."""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from settlement.config import Settings
from settlement.db import SYSTEM, engine_for, tenant_session


def init_app(app: Flask, settings: Settings) -> None:
    # The application role (PostgreSQL): what a request can reach is its key's tenant.
    app.extensions["settle_engine"] = engine_for(settings.app_url())

    @app.teardown_appcontext
    def _close(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()


def engine():
    return current_app.extensions["settle_engine"]


def db() -> Session:
    if "db" not in g:
        # No tenant until authentication: on PostgreSQL the application role then sees no
        # tenant's rows (keys are looked up through settle_key_principal), and requires()
        # binds the session to the caller's key. On SQLite the queries scope themselves.
        g.db = tenant_session(engine(), SYSTEM, expire_on_commit=False)
    return g.db
