"""`settle key list|revoke|rotate`: the keys of a tenant, never their secrets but once."""
from __future__ import annotations

import datetime as dt
import getpass

import click

from cli import key
from settlement.access.service import Principal, audit, list_keys, revoke_key, rotate_key
from settlement.db import session_scope
from settlement.tenants.service import TenantNotFound, tenant_by_slug


def _tenant_id(session, slug: str) -> int:
    try:
        return tenant_by_slug(session, slug).id
    except TenantNotFound as exc:
        raise click.ClickException(str(exc))


def _operator(tenant_id: int) -> Principal:
    return Principal(tenant_id, None, "admin", f"cli:{getpass.getuser()}")


def _when(moment: dt.datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


@key.command("list")
@click.option("--tenant", "slug", required=True)
def key_list(slug: str) -> None:
    """The tenant's keys: id, prefix, role, label, created, expires, revoked, live."""
    with session_scope() as session:
        rows = list_keys(session, _tenant_id(session, slug))
    click.echo("id\tprefix\trole\tlabel\tcreated\texpires\trevoked\tlive")
    for k in rows:
        click.echo("\t".join((str(k.id), k.prefix, k.role, k.label or "-", _when(k.created_at),
                              _when(k.expires_at), _when(k.revoked_at),
                              "yes" if k.live else "no")))


@key.command("revoke")
@click.option("--tenant", "slug", required=True)
@click.argument("key_id", type=int)
def key_revoke(slug: str, key_id: int) -> None:
    """Revoke a key: it is refused from the next request on."""
    with session_scope() as session:
        tenant_id = _tenant_id(session, slug)
        if not revoke_key(session, tenant_id, key_id):
            raise click.ClickException(f"{slug} has no unrevoked key {key_id}")
        audit(session, _operator(tenant_id), "key.revoked", "api_key", key_id)
    click.echo(f"key {key_id} of {slug} revoked")


@key.command("rotate")
@click.option("--tenant", "slug", required=True)
@click.option("--grace-hours", type=click.FloatRange(min=0), default=0, show_default=True,
              help="how long the old key keeps working (0: revoked at once)")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="the new key expires after this many days")
@click.argument("key_id", type=int)
def key_rotate(slug: str, key_id: int, grace_hours: float,
               expires_in_days: float | None) -> None:
    """Replace a key by a new one of the same role and label; the new key is printed once,
    alone on the last line."""
    expires_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=expires_in_days)
                  if expires_in_days else None)
    with session_scope() as session:
        tenant_id = _tenant_id(session, slug)
        secret = rotate_key(session, tenant_id, key_id, dt.timedelta(hours=grace_hours),
                            expires_at)
        if secret is None:
            raise click.ClickException(f"{slug} has no live key {key_id}")
        audit(session, _operator(tenant_id), "key.rotated", "api_key", key_id,
              {"grace_hours": grace_hours})
    click.echo(f"key {key_id} of {slug} replaced (store the new one now: it is not shown "
               "again):", err=True)
    click.echo(secret)
