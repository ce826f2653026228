"""Keys can be listed, revoked, rotated and made to expire (issue 11: revoke_key existed
and nothing called it); a revoked or expired key is refused from the next request on."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from cli import main
from settlement.access.service import create_key
from settlement.config import get_settings

BALANCE = "/v1/members/M1/balance"


def _ok(api, headers) -> int:
    return api.client.get("/v1/keys", headers=headers).status_code


def test_an_admin_revokes_a_key_and_it_is_refused_from_the_next_request(api, key_number):
    operator = api.h("operator")
    assert api.client.get(BALANCE, headers=operator).status_code in (200, 404)
    victim = key_number(api.tenant.keys["operator"])
    response = api.client.delete(f"/v1/keys/{victim}", headers=api.h("admin"))
    assert response.status_code == 204
    assert api.client.get(BALANCE, headers=operator).status_code == 401
    again = api.client.delete(f"/v1/keys/{victim}", headers=api.h("admin"))
    assert again.status_code == 404


def test_revoking_another_tenants_key_number_answers_404_and_their_key_keeps_working(
        api, api_for, key_number, add_key):
    other = api_for()
    mine = {k["id"] for k in api.client.get("/v1/keys", headers=api.h("admin"))
            .get_json()["keys"]}
    for _ in range(len(mine)):  # numbers past every key of ours
        headers = add_key(other.tenant, "admin")
    theirs = key_number(headers["Authorization"].split()[1])
    assert theirs not in mine
    response = api.client.delete(f"/v1/keys/{theirs}", headers=api.h("admin"))
    assert response.status_code == 404
    assert _ok(other, headers) == 200


@pytest.mark.parametrize("role", ["uploader", "operator", "approver"])
def test_only_an_admin_lists_or_revokes_keys(api, key_number, role):
    target = key_number(api.tenant.keys["uploader"])
    assert api.client.get("/v1/keys", headers=api.h(role)).status_code == 403
    assert api.client.delete(f"/v1/keys/{target}", headers=api.h(role)).status_code == 403


def test_the_key_list_shows_no_secret(api):
    body = api.client.get("/v1/keys", headers=api.h("admin")).get_json()
    assert {k["role"] for k in body["keys"]} == {"uploader", "operator", "approver", "admin"}
    text = str(body)
    assert all(secret not in text for secret in api.tenant.keys.values())
    assert all(set(k) == {"id", "prefix", "role", "label", "created_at", "expires_at",
                          "revoked_at", "live"} for k in body["keys"])


def _key_expiring(engine, tenant, at: dt.datetime) -> dict:
    with Session(engine) as session:
        key = create_key(session, tenant.id, "admin", "expiring", expires_at=at)
        session.commit()
    return {"Authorization": f"Bearer {key}"}


def test_a_key_past_its_expiry_is_refused_and_one_before_it_works(api, engine, tenant):
    now = dt.datetime.now(dt.timezone.utc)
    assert _ok(api, _key_expiring(engine, tenant, now - dt.timedelta(seconds=1))) == 401
    assert _ok(api, _key_expiring(engine, tenant, now + dt.timedelta(days=1))) == 200


@pytest.fixture
def settle(db_url, monkeypatch):
    monkeypatch.setenv("SETTLE_DATABASE_URL", db_url)
    get_settings.cache_clear()

    def run(*args: str):
        result = CliRunner().invoke(main, list(args))
        return result
    yield run
    get_settings.cache_clear()


def test_settle_key_list_revoke_and_rotate(api, tenant, key_number, settle):
    listed = settle("key", "list", "--tenant", tenant.slug)
    assert listed.exit_code == 0, listed.output
    assert len(listed.output.strip().splitlines()) == 1 + 4
    uploader = key_number(tenant.keys["uploader"])
    rotated = settle("key", "rotate", "--tenant", tenant.slug, str(uploader))
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.output.strip().splitlines()[-1]
    assert new_key.startswith("sk_")
    fresh = {"Authorization": f"Bearer {new_key}"}
    assert api.client.get("/v1/reports/1", headers=api.h("uploader")).status_code == 401
    assert api.client.get("/v1/reports/1", headers=fresh).status_code == 404  # no such report
    operator = key_number(tenant.keys["operator"])
    revoked = settle("key", "revoke", "--tenant", tenant.slug, str(operator))
    assert revoked.exit_code == 0, revoked.output
    assert api.client.get(BALANCE, headers=api.h("operator")).status_code == 401
    twice = settle("key", "revoke", "--tenant", tenant.slug, str(operator))
    assert twice.exit_code != 0 and "no unrevoked key" in twice.output


def test_rotation_with_grace_keeps_the_old_key_working_until_then(api, tenant, key_number,
                                                                  settle):
    admin = key_number(tenant.keys["admin"])
    rotated = settle("key", "rotate", "--tenant", tenant.slug, "--grace-hours", "1",
                     str(admin))
    assert rotated.exit_code == 0, rotated.output
    assert _ok(api, api.h("admin")) == 200
    old = [k for k in api.client.get("/v1/keys", headers=api.h("admin")).get_json()["keys"]
           if k["id"] == admin][0]
    assert old["expires_at"] is not None and old["live"] is True
