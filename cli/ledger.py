"""`settle ledger check [--tenant SLUG]`: the "no cent lost" check (the same work as the
check_ledger job), printed per tenant; exits 1 when any tenant's ledger disagrees."""
from __future__ import annotations

import getpass
import json
import sys

import click

from cli import main
from settlement.db import get_engine
from settlement.ledger.check import check_tenants


@main.group()
def ledger() -> None:
    """The ledger."""


@ledger.command("check")
@click.option("--tenant", "slug", default=None, help="one tenant (default: every tenant)")
def check_cmd(slug: str | None) -> None:
    """Every entry balances, each tenant's accounts sum to zero, each member's postings
    agree with its commissions, bonuses and payouts. Records the outcome (GET
    /v1/health/ledger shows it)."""
    results = check_tenants(get_engine(), slug, f"cli:{getpass.getuser()}")
    if slug is not None and not results:
        raise click.ClickException(f"no tenant {slug}")
    for result in results:
        if result.ok:
            click.echo(f"{result.tenant}: ok")
        else:
            click.echo(f"{result.tenant}: MISMATCH "
                       + json.dumps(result.as_dict(), sort_keys=True))
    if not all(r.ok for r in results):
        sys.exit(1)
