"""An exchange's id is its member's own number (issue 11): 1, 2, 3... per member, so it says
nothing about other members or tenants, and requests of a tenant never queue on a counter of
the tenant (the member's row, locked anyway, orders the member's requests)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.exchanges.conftest import earn


def post(client, tenant, external_id, body, key):
    return client.post(f"/v1/members/{external_id}/exchanges", json=body,
                       headers={**tenant.auth("operator"), "Idempotency-Key": key})


def test_each_member_numbers_its_own_exchanges_whatever_other_members_and_tenants_do(
        client, engine, points_tenant):
    ours, theirs = points_tenant(), points_tenant()
    for tenant in (ours, theirs):
        earn(engine, tenant, "M1", 5000)
        earn(engine, tenant, "M2", 5000)
    made = []
    for tenant, member, key in ((ours, "M1", "a"), (theirs, "M1", "b"), (ours, "M2", "c"),
                                (ours, "M1", "d"), (theirs, "M2", "e"), (ours, "M2", "f")):
        answer = post(client, tenant, member, {"exit": "amazon", "value": 500}, key)
        assert answer.status_code == 201, answer.get_json()
        made.append((tenant is ours, member, answer.get_json()["id"]))
    assert made == [(True, "M1", 1), (False, "M1", 1), (True, "M2", 1), (True, "M1", 2),
                    (False, "M2", 1), (True, "M2", 2)]
    # M1's exchange 2 is M1's own; M2's exchange 2 another row; theirs has no M1 exchange 2.
    mine = client.get("/v1/members/M1/exchanges/2", headers=ours.auth("operator"))
    other = client.get("/v1/members/M2/exchanges/2", headers=ours.auth("operator"))
    assert mine.status_code == other.status_code == 200
    assert client.get("/v1/members/M1/exchanges/2",
                      headers=theirs.auth("operator")).status_code == 404
    assert client.post("/v1/members/M1/exchanges/2/cancel",
                       headers=theirs.auth("operator")).status_code == 404


def test_simultaneous_requests_of_one_member_get_distinct_numbers(client, engine, db_url,
                                                                   points_tenant):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serializes writers: nothing runs at once")
    tenant = points_tenant()
    earn(engine, tenant, "M1", 50_000)
    count = 6
    start = threading.Barrier(count, timeout=120)

    def request(n: int) -> int:
        own = client.application.test_client()
        start.wait(timeout=30)
        answer = post(own, tenant, "M1", {"exit": "amazon", "value": 500}, f"k{n}")
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()["id"]

    with ThreadPoolExecutor(count) as pool:
        numbers = list(pool.map(request, range(count)))
    assert sorted(numbers) == list(range(1, count + 1))
