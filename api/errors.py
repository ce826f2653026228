"""Every error is application/problem+json: status, title, detail, and errors naming the
line and field at fault."""
from __future__ import annotations

import logging

import http

from apispec import BasePlugin
from flask import Flask, json
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from api.schemas.problem import ProblemSchema
from settlement.errors import DomainError
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


# The HTTP status of a domain error's code (settlement/errors.py). A code not here is a
# request the domain understood and refuses as it stands: 422.
STATUS_OF_CODE = {
    "idempotency_key": 400, "unreadable_upload": 400,
    "same_principal": 403,
    "not_found": 404,
    "upload_too_large": 413,
    "unsupported_media_type": 415,
    # The state of things refuses it (another request may change that).
    "run_exists": 409, "run_in_flight": 409, "not_planned": 409, "plan_changed": 409,
    "plan_hash_mismatch": 409, "not_approved": 409, "not_executing": 409, "not_held": 409,
    "held_for_payout": 409, "campaign_budget_exhausted": 409, "not_cancellable": 409,
    "not_failed": 409,
}


def http_status(code: str) -> int:
    return STATUS_OF_CODE.get(code, 422)


def domain_problem(exc: DomainError) -> Problem:
    """A domain refusal as a problem: titled by its code, its one error naming the field."""
    return Problem(http_status(exc.code), exc.code.replace("_", " ").capitalize(), exc.message,
                   [{"line": None, "field": exc.field, "code": exc.code,
                     "message": exc.message}])


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

    @app.errorhandler(DomainError)
    def _refused(exc: DomainError):
        return _problem(domain_problem(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        data = getattr(exc, "data", None) or {}
        errors = _webargs_errors(data.get("messages")) if data else []
        detail = exc.description or ""
        if errors:
            detail = "the request has invalid fields"
        body, status, headers = problem_response(exc.code or 500, exc.name, detail, errors)
        # A 405 says which methods the resource takes (RFC 9110), TRACE's included.
        allow = dict(exc.get_headers()).get("Allow")
        if allow:
            headers["Allow"] = allow
        return body, status, headers

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return problem_response(500, "Internal Server Error", "an unexpected error occurred")

    # flask-smorest registers its own HTTPException handler; ours must win.
    api.handle_http_exception = _http


class _EveryOperationMayFail(BasePlugin):
    """Each operation documents its errors: a `default` problem+json response."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            operation.setdefault("responses", {}).setdefault(
                "default", {"$ref": "#/components/responses/DEFAULT_ERROR"})


class ProblemApi(Api):
    """flask-smorest's Api, with its error responses documented as what they are."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app=None, *, spec_kwargs=None):
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs.setdefault("extra_plugins", [_EveryOperationMayFail()])
        super().__init__(app, spec_kwargs=spec_kwargs)

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error, as problem details", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)
