"""The HTTP API: a Flask app factory, thin blueprints over settlement/."""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

from settlement.config import Settings, get_settings
from api import docs_assets, jsonbody

# Before any blueprint module is imported: their argument decorators bind the parser.
jsonbody.install()


class Int64Converter(IntegerConverter):
    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", 2 ** 63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    app = Flask(__name__)
    # Ids are 64-bit: a larger number in a path is no id of ours (404), not a crash.
    app.url_map.converters["int"] = Int64Converter
    app.config.update(
        SETTLE=settings,
        API_TITLE="Cashback settlement engine",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Served by the app from the pinned swagger-ui-bundle (api/docs_assets.py): no CDN.
        OPENAPI_SWAGGER_UI_URL=docs_assets.ASSETS_URL,
        MAX_CONTENT_LENGTH=None,  # uploads stream; the report route enforces its own limit
    )
    from api import console, database, errors, observability
    from api.routes import (catalog, health, keys, lists, members, referrals, reports, runs,
                            webhooks)
    from api.routes import exchanges

    database.init_app(app, settings)
    observability.init_app(app)
    console.init_app(app, settings)
    api = errors.ProblemApi(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}, "security": [{"bearer": []}]})
    errors.init_app(app, api)
    app.register_blueprint(docs_assets.blp)
    for blueprint in (health.blp, catalog.blp, members.blp, reports.blp, runs.blp,
                      webhooks.blp, referrals.blp, lists.blp, keys.blp, exchanges.blp):
        api.register_blueprint(blueprint, url_prefix="/v1")
    return app
