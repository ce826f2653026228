"""Swagger UI's files for /v1/docs, served by the app from the pinned swagger-ui-bundle
package: the docs page works without internet and loads no code from a CDN."""
from __future__ import annotations

from flask import Blueprint, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from api.errors import Problem

ASSETS_URL = "/v1/docs/assets/"
# Only what flask-smorest's page loads (and the favicons): nothing else of the folder.
SERVED = frozenset({"swagger-ui.css", "swagger-ui-bundle.js",
                    "swagger-ui-standalone-preset.js", "favicon-16x16.png",
                    "favicon-32x32.png"})

blp = Blueprint("docs_assets", __name__)


@blp.route(ASSETS_URL + "<name>")
def asset(name: str):
    if name not in SERVED:
        raise Problem(404, "Not Found", f"no docs asset {name}")
    return send_from_directory(swagger_ui_path, name, max_age=86400)
