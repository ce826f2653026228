"""Every error is application/problem+json: status, title, detail, and errors naming the
line and field at fault."""
from __future__ import annotations

import logging

from flask import Flask, json
from werkzeug.exceptions import HTTPException

from settlement.reports.formats.base import LineError

log = logging.getLogger("settle.api")
PROBLEM = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str = "",
                 errors: list[LineError] | list[dict] | None = None, **extra):
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = [e.as_dict() if isinstance(e, LineError) else e for e in errors or []]
        self.extra = extra


def problem_response(status: int, title: str, detail: str = "", errors=None, **extra):
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return json.dumps(body), status, {"Content-Type": PROBLEM}


def _webargs_errors(messages) -> list[dict]:
    """flask-smorest/webargs messages {location: {field: [msg]}} as our error list."""
    out = []

    def walk(prefix, node):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, list) and all(isinstance(m, str) for m in node):
            for message in node:
                out.append({"line": None, "field": prefix, "code": "invalid_field",
                            "message": message})
        else:
            out.append({"line": None, "field": prefix, "code": "invalid_field",
                        "message": str(node)})

    for location, fields in (messages or {}).items():
        walk("", fields)
    return out


def init_app(app: Flask, api) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem):
        return problem_response(exc.status, exc.title, exc.detail, exc.errors, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        data = getattr(exc, "data", None) or {}
        errors = _webargs_errors(data.get("messages")) if data else []
        detail = exc.description or ""
        if errors:
            detail = "the request has invalid fields"
        return problem_response(exc.code or 500, exc.name, detail, errors)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return problem_response(500, "Internal Server Error", "an unexpected error occurred")

    # flask-smorest registers its own HTTPException handler; ours must win.
    api.handle_http_exception = _http
