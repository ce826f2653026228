"""Running a sandbox's WSGI app in a background thread (werkzeug, threaded), for tests and
the demo: loopback only unless asked otherwise (sandboxes.bind)."""
from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from sandboxes.bind import check_bind_host


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


class SandboxServer:
    """A sandbox running in a background thread; `shutdown()` stops it (and closes the
    sandbox, when it has something to close)."""

    def __init__(self, sandbox, httpd, thread: threading.Thread, base_url: str):
        self.sandbox, self.httpd, self.thread, self.base_url = sandbox, httpd, thread, base_url

    @property
    def port(self) -> int:
        return self.httpd.server_port

    def shutdown(self) -> None:
        close = getattr(self.sandbox, "close", None)
        if close is not None:
            close()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> "SandboxServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def serve_in_thread(sandbox, host: str, port: int, *, name: str, allow_public: bool,
                    log_requests: bool = False) -> SandboxServer:
    """Listen on host:port (port 0: any free one) and answer with `sandbox` in a daemon
    thread. A `host` beyond loopback is refused (PublicBindRefused) unless `allow_public`."""
    check_bind_host(host, allow_public)
    httpd = make_server(host, port, sandbox, threaded=True,
                        request_handler=None if log_requests else QuietHandler)
    shown = f"[{host}]" if ":" in host else host
    # shutdown() waits for the loop's next look at its flag: every half second by default,
    # which every test that starts a sandbox paid on its way out.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              name=name, daemon=True)
    thread.start()
    return SandboxServer(sandbox, httpd, thread, f"http://{shown}:{httpd.server_port}")
