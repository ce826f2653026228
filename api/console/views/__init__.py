"""The console's pages, one module per menu entry."""
from api.console.views import audit, members, queues, reports, runs, signin  # noqa: F401
