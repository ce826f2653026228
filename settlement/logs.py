"""One JSON log line per event, from every process (web, rq workers, clock), through
structlog; stdlib loggers (ours, Flask's, rq's, gunicorn's) render the same way.

Each line carries the context bound in contextvars: the web binds `request_id` for the
length of a request, and a job binds the `request_id` of the request that enqueued it.
Nothing secret is ever written: values under secret-sounding keys are replaced, and an
API key found inside any string is masked.
"""
from __future__ import annotations

import logging
import re

import structlog

# Keys whose values are secrets whatever they hold (compared lower-case).
SECRET_KEYS = frozenset({"authorization", "cookie", "set-cookie", "set_cookie", "key",
                         "api_key", "secret", "password", "token", "csrf_token",
                         "gift_code", "code", "claim_code", "gcclaimcode", "session"})
REDACTED = "[redacted]"
# The shape of our API keys (settlement/access/service.py): sk_<12 hex>_<secret>.
API_KEY_PATTERN = re.compile(r"sk_[0-9a-f]{12}_[A-Za-z0-9_\-]+")
# A gift code inside text (an exception quoting a provider's answer, a form echoed back):
# the value after one of these names, quoted or not.
GIFT_CODE_PATTERN = re.compile(
    r"""(?i)(["']?(?:gcClaimCode|claim_code|gift_code)["']?\s*[:=]\s*["']?)[^"'\s,;}&]+""")
_HANDLER_NAME = "settle-json"


def _mask(value):
    if isinstance(value, str):
        value = API_KEY_PATTERN.sub("sk_" + REDACTED, value)
        return GIFT_CODE_PATTERN.sub(r"\1" + REDACTED, value)
    return value


def redact(_logger, _method, event_dict: dict) -> dict:
    for name in list(event_dict):
        if name.lower() in SECRET_KEYS:
            event_dict[name] = REDACTED
        else:
            event_dict[name] = _mask(event_dict[name])
    return event_dict


def _shared_processors() -> list:
    return [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True)]


def json_formatter() -> logging.Formatter:
    """A stdlib formatter writing our JSON lines (gunicorn.conf.py uses it for gunicorn's
    own lines)."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.processors.format_exc_info,
                           redact],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer()])


def configure(level: str = "INFO", stream=None) -> None:
    """JSON lines on stderr (or `stream`). Safe to call again: our handler is replaced,
    others' kept."""
    structlog.configure(
        processors=[*_shared_processors(), structlog.processors.format_exc_info, redact,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger)
    handler = logging.StreamHandler(stream)
    handler.name = _HANDLER_NAME
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.name != _HANDLER_NAME] + [handler]
    root.setLevel(level)


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")
