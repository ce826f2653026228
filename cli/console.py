"""`settle demo console`: the console served for a person on this machine, over the
configured database (`make console`: the demo's), with in-process jobs and the local PayPal
sandbox, and keys to sign in with."""
from __future__ import annotations

import click
from sqlalchemy import select

from cli.demo import demo
from settlement.access.service import create_key
from settlement.config import get_settings
from settlement.db import session_scope
from settlement.models import Tenant

CONSOLE_ROLES = ("operator", "approver", "uploader", "admin")


def console_keys() -> dict[str, dict[str, str]]:
    """A fresh key per role for every tenant (labelled, revocable with `settle key`)."""
    with session_scope() as session:
        tenants = session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.id)).all()
        return {slug: {role: create_key(session, tenant_id, role, f"console {role}")
                       for role in CONSOLE_ROLES} for tenant_id, slug in tenants}


@demo.command("console")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int,
              help="0: any free port")
def demo_console(host: str, port: int) -> None:
    """Serve the console until interrupted (Ctrl-C); prints its URL and sign-in keys."""
    from werkzeug.serving import make_server

    from api import create_app
    from settlement.migrate import upgrade
    from sandboxes.paypal import serve

    base = get_settings()
    upgrade(base.database_url)
    paypal, paypal_url = serve(client_id=base.paypal_client_id,
                               client_secret=base.paypal_client_secret, polls_per_step=0)
    settings = base.model_copy(update={"paypal_base_url": paypal_url,
                                       "payout_poll_seconds": 0.05, "payout_max_polls": 40})
    server = make_server(host, port, create_app(settings), threaded=True)
    for slug, keys in console_keys().items():
        click.echo(f"{slug}:")
        for role, key in keys.items():
            click.echo(f"   {role:<9} {key}")
    click.echo(f"PayPal sandbox at {paypal_url}; jobs in-process")
    click.echo(f"Console: http://{host}:{server.server_port}/console/  (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        paypal.shutdown()
