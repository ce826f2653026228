"""`settle commissions confirm-held`: end the holding periods that are over (the same work
as the `confirm_held` job the clock runs daily)."""
from __future__ import annotations

import datetime as dt

import click

from cli import main
from settlement.commissions.holds import confirm_held_for_tenants
from settlement.db import get_engine


@main.group()
def commissions() -> None:
    """Commissions: their lifecycle outside reports."""


@commissions.command("confirm-held")
@click.option("--tenant", "slug", default=None, help="one tenant's slug (default: every tenant)")
@click.option("--date", "on", default=None,
              type=click.DateTime(formats=["%Y-%m-%d"]),
              help="confirm as of this date (default: today in each tenant's time zone)")
def confirm_held(slug: str | None, on: dt.datetime | None) -> None:
    """Confirm the lines without a network status whose holding period is over."""
    confirmed = confirm_held_for_tenants(get_engine(), slug, on.date() if on else None)
    if slug is not None and not confirmed:
        raise click.ClickException(f"no tenant {slug!r}")
    for tenant, count in sorted(confirmed.items()):
        click.echo(f"{tenant}: {count} line(s) confirmed")
