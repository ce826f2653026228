"""Running the sandbox: in a background thread (`serve`, for tests and the demo) or as a
process (`python -m sandboxes.paypal`). Loopback only unless asked otherwise (sandboxes.bind)."""
from __future__ import annotations

import argparse

from werkzeug.serving import make_server

from sandboxes.bind import PublicBindRefused, check_bind_host
from sandboxes.paypal.app import PayPalSandbox
from sandboxes.paypal.state import SandboxConfig
from sandboxes.serving import SandboxServer, serve_in_thread
from settlement.runtime import tune_gc_for_bulk_work


def serve(host: str = "127.0.0.1", port: int = 0, log_requests: bool = False, *,
          allow_public: bool = False, **config) -> tuple[SandboxServer, str]:
    """Run a sandbox in a background thread (werkzeug, threaded). `config` takes the
    `SandboxConfig` fields. Returns the server (with `.shutdown()`) and its base URL.
    A `host` beyond loopback is refused (PublicBindRefused) unless `allow_public`."""
    server = serve_in_thread(PayPalSandbox(SandboxConfig(**config)), host, port,
                             name="paypal-sandbox", allow_public=allow_public,
                             log_requests=log_requests)
    return server, server.base_url


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
