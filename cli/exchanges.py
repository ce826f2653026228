"""`settle exchanges fulfil|expire [--tenant SLUG] [--date D]`: the point sites' recurring
work (the fulfil_exchanges and expire_points jobs) by hand, for one tenant or all."""
from __future__ import annotations

import datetime as dt

import click

from cli import main
from settlement.config import get_settings
from settlement.db import get_engine
from settlement.exchanges.daily import expire_all, fulfil_all


@main.group()
def exchanges() -> None:
    """Point sites: members' exchanges and expiring points."""


def _date(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        raise click.BadParameter(f"{raw!r} is not a date (YYYY-MM-DD)", param_hint="--date")


@exchanges.command("fulfil")
@click.option("--tenant", "slug", default=None, help="one tenant (default: every point site)")
@click.option("--date", "day", default=None, help="the tenant's today (default: now there)")
def fulfil_cmd(slug: str | None, day: str | None) -> None:
    """Hand requested exchanges to their partners; move open batches on."""
    for tenant, states in fulfil_all(get_engine(), get_settings(), slug, _date(day)).items():
        click.echo(f"{tenant}: batches " + (", ".join(f"{k} {v}" for k, v in states.items())
                                            or "none open"))


@exchanges.command("expire")
@click.option("--tenant", "slug", default=None, help="one tenant (default: every point site)")
@click.option("--date", "day", default=None, help="the tenant's today (default: now there)")
def expire_cmd(slug: str | None, day: str | None) -> None:
    """Move points past their term to breakage (one entry per member and date)."""
    for tenant, members in expire_all(get_engine(), slug, _date(day)).items():
        click.echo(f"{tenant}: {members} members' points expired")
