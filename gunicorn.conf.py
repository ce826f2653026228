"""gunicorn reads this file from the working directory by itself.

Logs: gunicorn's own lines are JSON like the app's (settlement/logs.py); its access log is
off, since the app writes one line per request itself, with the request id.

Metrics: with PROMETHEUS_MULTIPROC_DIR set (an empty folder, shared with the rq workers of
the same host), each process keeps its metrics in files there and /metrics adds them up; a
web worker that exits is marked dead so its live gauges stop counting."""
import os

logconfig_dict = {
    # The root's handler is the app's own (settlement.logs.configure, at app creation).
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"],
                           "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
    "formatters": {"generic": {"()": "settlement.logs.json_formatter"}},
}


def child_exit(_server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
