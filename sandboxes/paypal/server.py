"""Running the sandbox: in a background thread (`serve`, for tests and the demo) or as a
process (`python -m sandboxes.paypal`). Loopback only unless asked otherwise (sandboxes.bind)."""
from __future__ import annotations

import argparse
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from sandboxes.bind import PublicBindRefused, check_bind_host
from sandboxes.paypal.app import PayPalSandbox
from sandboxes.paypal.state import SandboxConfig
from settlement.runtime import tune_gc_for_bulk_work


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


class SandboxServer:
    """A sandbox running in a background thread; `shutdown()` stops it."""

    def __init__(self, sandbox: PayPalSandbox, httpd, thread: threading.Thread,
                 base_url: str):
        self.sandbox = sandbox
        self.httpd = httpd
        self.thread = thread
        self.base_url = base_url

    @property
    def port(self) -> int:
        return self.httpd.server_port

    def shutdown(self) -> None:
        self.sandbox.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> "SandboxServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def serve(host: str = "127.0.0.1", port: int = 0, log_requests: bool = False, *,
          allow_public: bool = False, **config) -> tuple[SandboxServer, str]:
    """Run a sandbox in a background thread (werkzeug, threaded). `config` takes the
    `SandboxConfig` fields. Returns the server (with `.shutdown()`) and its base URL.
    A `host` beyond loopback is refused (PublicBindRefused) unless `allow_public`."""
    check_bind_host(host, allow_public)
    sandbox = PayPalSandbox(SandboxConfig(**config))
    httpd = make_server(host, port, sandbox, threaded=True,
                        request_handler=None if log_requests else _QuietHandler)
    shown = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown}:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, name="paypal-sandbox", daemon=True)
    thread.start()
    return SandboxServer(sandbox, httpd, thread, base_url), base_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandboxes.paypal",
        description="Local PayPal Payouts sandbox (test/demo tool).")
    defaults = SandboxConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--allow-public", action="store_true",
                        help="listen on a --host beyond loopback (the control API has no "
                             "authentication)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--polls-per-step", type=int, default=defaults.polls_per_step)
    parser.add_argument("--timeout-after-accept-seconds", type=float,
                        default=defaults.timeout_after_accept_seconds)
    parser.add_argument("--token-ttl-seconds", type=int, default=defaults.token_ttl_seconds)
    parser.add_argument("--webhook-url", default=None)
    args = parser.parse_args(argv)
    try:
        check_bind_host(args.host, args.allow_public)
    except PublicBindRefused as refused:
        parser.error(str(refused))
    sandbox = PayPalSandbox(SandboxConfig(
        client_id=args.client_id, client_secret=args.client_secret,
        polls_per_step=args.polls_per_step,
        timeout_after_accept_seconds=args.timeout_after_accept_seconds,
        token_ttl_seconds=args.token_ttl_seconds, webhook_url=args.webhook_url))
    httpd = make_server(args.host, args.port, sandbox, threaded=True)
    tune_gc_for_bulk_work()  # it keeps every batch's items: a million objects and more
    print(f"PayPal sandbox on http://{args.host}:{httpd.server_port} "
          f"(client id {args.client_id!r})", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.close()
        httpd.server_close()
