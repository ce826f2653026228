"""Public ids are each tenant's own numbers (issue 11): what the API calls a report, a run,
a batch, a key, a share rule or an exchange says nothing about other tenants' volume, and
a number is looked up within the caller's tenant only (settlement/numbering.py)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from settlement.migrate import upgrade
from settlement.models import TenantCounter
from settlement.numbering import take_number

BEFORE_CUTOFF = "2026-11-10T18:00:00Z"  # confirmed before the 2026-11-15 run's cut-off


def _upload(tenant_api, txn: str) -> int:
    response = tenant_api.upload(tenant_api.csv(tenant_api.row(txn)))
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_a_report_id_reveals_nothing_about_other_tenants_volume(api_for):
    a = api_for().setup()
    b = api_for().setup()
    ids = {"a": [], "b": []}
    # Interleaved, A busier than B: B's numbers do not move with A's uploads.
    for who, txn in (("a", "A-1"), ("a", "A-2"), ("b", "B-1"), ("a", "A-3"), ("a", "A-4"),
                     ("b", "B-2"), ("a", "A-5"), ("b", "B-3")):
        ids[who].append(_upload(a if who == "a" else b, txn))
    assert ids["b"] == [1, 2, 3]
    assert ids["a"] == [1, 2, 3, 4, 5]


def test_report_1_of_two_tenants_is_two_rows_and_each_tenant_sees_only_its_own(api_for):
    a = api_for().setup()
    b = api_for().setup()
    first_a = a.ingest(a.row("A-1"), a.row("A-2"))
    first_b = b.ingest(b.row("B-1"))
    a.ingest(a.row("A-3"))
    assert first_a["id"] == first_b["id"] == 1
    assert (a.report(1)["counts"]["lines"], b.report(1)["counts"]["lines"]) == (2, 1)
    # A's report 2 is a number B never used: not found, and not a hint that it exists.
    assert a.report(2)["counts"]["lines"] == 1
    missing = b.client.get("/v1/reports/2", headers=b.h("uploader"))
    assert missing.status_code == 404
    assert b.client.post("/v1/reports/2/retry", headers=b.h("uploader")).status_code == 404
    listed = b.client.get("/v1/reports", headers=b.h("uploader")).get_json()["reports"]
    assert [r["id"] for r in listed] == [1]


def test_runs_batches_and_rules_are_numbered_per_tenant_and_found_only_in_their_tenant(api_for):
    a = api_for().setup(members=("M1", "M2"))
    b = api_for().setup()
    a.put_member("M1", payout_method="check", address_line1="1 Main St", city="Springfield",
                 postal_code="12345", country="US")
    a.put_member("M2", payout_method="paypal", paypal_email="m2@example.com")
    a.ingest(a.row("A-1", status="confirmed", sale="900.00", commission="90.00"),
             a.row("A-2", "M2", status="confirmed", sale="900.00", commission="90.00"),
             as_of=BEFORE_CUTOFF)
    cancelled = a.planned()
    assert a.cancel(cancelled["id"]).status_code == 200
    run_a = a.planned()
    run_b = b.planned()
    assert (cancelled["id"], run_a["id"], run_b["id"]) == (1, 2, 1)
    # The tenant's batches go on from one run to the next (a cancelled plan's stay).
    before = sorted(x["id"] for x in cancelled["batches"])
    after = sorted(x["id"] for x in run_a["batches"])
    assert before and before + after == list(range(1, len(before) + len(after) + 1))
    assert b.client.get("/v1/settlement-runs/2", headers=b.h("operator")).status_code == 404
    assert b.approve(2).status_code == 404
    assert b.cancel(2).status_code == 404
    assert a.run(2)["status"] == "planned" and b.run(1)["status"] == "planned"
    rule = a.rule(kind="fixed", amount="1.00", priority=7)
    assert rule.status_code == 201 and rule.get_json()["id"] == 2  # setup made rule 1
    assert [r["id"] for r in b.client.get("/v1/share-rules", headers=b.h("admin"))
            .get_json()["share_rules"]] == [1]


def test_keys_are_listed_by_the_tenants_own_numbers(api_for):
    a = api_for()
    listed = a.client.get("/v1/keys", headers=a.h("admin")).get_json()["keys"]
    assert [k["id"] for k in listed] == list(range(1, len(listed) + 1))


def test_run_items_name_their_member_and_page_without_internal_ids(api_for):
    a = api_for().setup(members=("M1", "M2", "M3"))
    for member in ("M1", "M2", "M3"):
        a.put_member(member, payout_method="check", address_line1="1 Main St",
                     city="Springfield", postal_code="12345", country="US")
    a.ingest(*(a.row(f"T-{m}", m, status="confirmed", sale="900.00", commission="90.00")
               for m in ("M1", "M2", "M3")), as_of=BEFORE_CUTOFF)
    run = a.planned()
    first = a.run_items(run["id"], limit=2).get_json()
    assert [i["member"] for i in first["items"]] == ["M1", "M2"]
    assert all("id" not in i and "member_id" not in i for i in first["items"])
    rest = a.run_items(run["id"], limit=2, cursor=first["next_cursor"]).get_json()
    assert [i["member"] for i in rest["items"]] == ["M3"] and rest["next_cursor"] is None


def test_simultaneous_uploads_of_one_tenant_get_distinct_numbers(api_for, db_url):
    """On PostgreSQL, uploads at once queue on the tenant's counter: no two share a number
    (the unique key would refuse it), and with none failing there is no gap either."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serializes writers: nothing runs at once")
    a = api_for().setup()
    count = 8
    start = threading.Barrier(count, timeout=120)

    def upload(n: int) -> int:
        client = a.client.application.test_client()
        body = a.csv(a.row(f"C-{n}"))
        start.wait(timeout=30)
        response = client.post("/v1/reports", data=body, content_type="text/csv",
                               headers=a.h("uploader"))
        assert response.status_code == 202, response.get_json()
        return response.get_json()["id"]

    with ThreadPoolExecutor(count) as pool:
        numbers = list(pool.map(upload, range(count)))
    assert sorted(numbers) == list(range(1, count + 1))


def test_a_number_taken_in_a_transaction_that_rolls_back_leaves_a_gap_never_a_twin(
        engine, tenant):
    with Session(engine) as session:
        first = take_number(session, tenant.id, "share_rule")
        session.rollback()
    with Session(engine) as session:
        second = take_number(session, tenant.id, "share_rule")
        third = take_number(session, tenant.id, "share_rule")
        session.commit()
    assert first == second  # the rollback gave the number back: no gap here
    assert third == second + 1
    with Session(engine) as session:
        assert session.scalar(select(TenantCounter.last).where(
            TenantCounter.tenant_id == tenant.id, TenantCounter.kind == "share_rule")) == third


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migration_0016_numbers_existing_rows_per_tenant_in_id_order(kind, tmp_path,
                                                                      request):
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'numbers.sqlite3'}"
    else:
        url = _fresh_pg(request)
    upgrade(url, "0015")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for slug in ("ta", "tb"):
            conn.execute(text("INSERT INTO tenants (slug, name, currency, policy) "
                              "VALUES (:s, :s, 'USD', '{}')"), {"s": slug})
        tenants = dict(conn.execute(text("SELECT slug, id FROM tenants")).all())
        # Interleaved: ta, tb, ta, ta, tb.
        for n, slug in enumerate(("ta", "tb", "ta", "ta", "tb")):
            conn.execute(text(
                "INSERT INTO api_keys (tenant_id, prefix, secret_hash, role) "
                "VALUES (:t, :p, :h, 'admin')"), {"t": tenants[slug], "p": f"p{n}",
                                                 "h": f"{n:064d}"})
    upgrade(url, "0016")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT tenant_id, prefix, number FROM api_keys "
                                 "ORDER BY id")).all()
        counters = dict(conn.execute(text(
            "SELECT tenant_id, last FROM tenant_counters WHERE kind = 'key'")).all())
    ta, tb = tenants["ta"], tenants["tb"]
    assert [(t, p, n) for t, p, n in rows] == [(ta, "p0", 1), (tb, "p1", 1), (ta, "p2", 2),
                                               (ta, "p3", 3), (tb, "p4", 2)]
    assert counters == {ta: 3, tb: 2}
    with Session(engine) as session:
        assert take_number(session, tb, "key") == 3  # the counter goes on from there
        session.rollback()
    engine.dispose()


def _fresh_pg(request) -> str:
    """A database of its own (the suite's is at head already), dropped afterwards."""
    import uuid

    from tests.conftest import PG_ADMIN_URL
    request.getfixturevalue("pg_url")  # skips (or fails) as the suite does without a server
    name = f"settle_numbers_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    request.addfinalizer(drop)
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def test_member_and_retailer_cursors_name_the_last_row_not_an_internal_id(api_for):
    import base64

    a = api_for().setup(retailers=("macys", "best-buy", "zappos"), members=("M1", "M2", "M3"))
    decode = lambda c: base64.urlsafe_b64decode(c + "==").decode()  # noqa: E731
    for path, key, name, first in (("/v1/members", "members", "external_id", ["M1", "M2"]),
                                   ("/v1/retailers", "retailers", "slug",
                                    ["macys", "best-buy"])):
        page = a.client.get(path, headers=a.h("admin"), query_string={"limit": 2}).get_json()
        assert [r[name] for r in page[key]] == first
        assert decode(page["next_cursor"]) == first[-1]
        rest = a.client.get(path, headers=a.h("admin"), query_string={
            "limit": 2, "cursor": page["next_cursor"]}).get_json()
        assert len(rest[key]) == 1 and rest["next_cursor"] is None
        unknown = base64.urlsafe_b64encode(b"nobody").decode()
        assert a.client.get(path, headers=a.h("admin"),
                            query_string={"cursor": unknown}).status_code == 400
