"""Every request: a request id (the caller's X-Request-ID when it is a sane one, else a new
one) bound into every log line of the request and echoed in the response, one access-log
line, and the request counted and timed for /metrics."""
from __future__ import annotations

import re
import time
import uuid

import structlog
from flask import Flask, Response, current_app, g, request

from api.database import engine
from settlement import logs, metrics

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
access_log = structlog.get_logger("settle.access")


def request_id_of(incoming: str | None) -> str:
    if incoming and SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def init_app(app: Flask) -> None:
    logs.configure(app.config["SETTLE"].log_level)
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_forget)
    app.add_url_rule("/metrics", "metrics", _metrics_view)


def _begin() -> None:
    g.request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def _finish(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    # The route's pattern, not the path: one series per route, whatever the ids in it.
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    metrics.HTTP_LATENCY.labels(request.method, route).observe(seconds)
    access_log.info("request", method=request.method, path=request.path, route=route,
                    status=response.status_code, duration_ms=round(seconds * 1000, 1),
                    bytes=response.calculate_content_length(),
                    remote_addr=request.remote_addr)
    return response


def _forget(_exc) -> None:
    structlog.contextvars.unbind_contextvars("request_id")


def _metrics_view():
    settings = current_app.config["SETTLE"]
    depths = None
    if settings.redis_url:
        from workers.queues_view import overview
        depths = lambda: overview(settings)  # noqa: E731
    state = metrics.StateCollector(engine(), depths)
    return Response(metrics.exposition(state), mimetype="text/plain; version=0.0.4")
