"""One commission however its id is disguised (issue 11: 9 of 17 variants of a
transaction id once became commissions of their own)."""
from __future__ import annotations

from sqlalchemy import text

AS_OF = "2026-11-24T00:00:00Z"
VARIANTS = [
    "T-1001\u200b", "T-10\u200d01", "\ufeffT-1001", "T-10\u00ad01", "T-1001\u202e",
    "\x1b[0mT-1001", "Ｔ-１００１", "T\uff0d1001", "Т-1001", "T-1001\u2060", "T-1001\u200c",
    "T-1001\u2066", "T-1001\x7f", "T-1001\u200e", "T-1001\u0085", "T\u20111001",
]


def commissions(engine, tenant) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT transaction_id FROM commissions WHERE tenant_id = :t"),
            {"t": tenant.id}).scalars())


def test_variants_of_a_transaction_id_never_become_a_second_commission(api, engine, tenant):
    api.setup()
    first = api.ingest(api.row("T-1001", status="confirmed"), as_of=AS_OF)
    assert first["counts"]["inserted"] == 1
    for variant in VARIANTS:
        report = api.ingest(api.row(variant, status="confirmed"), as_of=AS_OF)
        assert report["counts"]["inserted"] == 0, (variant, report)
    assert commissions(engine, tenant) == ["T-1001"]
    assert api.money("M1") == ("0.00", "6.00")


def test_a_refused_id_is_named_by_line_and_field_with_the_reason(api):
    api.setup()
    report = api.ingest(api.row("T-1"), api.row("T-2\u202e", member="M1\u200b"), as_of=AS_OF)
    errors = {(e["line"], e["field"]): e for e in report["errors"]}
    assert set(errors) == {(3, "transaction_id"), (3, "order_id"), (3, "member")}
    assert "bidirectional" in errors[3, "transaction_id"]["message"]
    assert "U+200B" in errors[3, "member"]["message"]
    assert report["counts"]["inserted"] == 1


def test_a_fullwidth_member_id_is_the_member(api):
    api.setup()
    report = api.ingest(api.row("T-1", member="Ｍ１"), as_of=AS_OF)
    assert report["counts"]["inserted"] == 1 and report["counts"]["unattributed"] == 0
    assert api.money("M1") == ("6.00", "0.00")
