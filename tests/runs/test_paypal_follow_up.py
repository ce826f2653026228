"""PayPal to the end (DOMAIN.md "PayPal after the batch completes"): unclaimed items keep
their money reserved while the run completes, and are followed until PayPal settles them;
an item taken back after it was paid (REFUNDED, REVERSED, BLOCKED) is `returned` and its
money goes back to the member's balance by a compensating entry; the paid entry stands.

PostgreSQL, the PayPal sandbox over HTTP, the run executed in-process."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from settlement.db import tenant_session
from settlement.payouts.paypal import PayPalAdapter
from settlement.runs.execute import run_batch, start_execution
from settlement.runs.follow import batches_to_follow, follow_batches
from tests.faults import harness as h

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def sandbox():
    with h.paypal_sandbox(polls_per_step=0) as url:
        yield url


@pytest.fixture
def paid(pg_url, sandbox, tmp_path):
    """A run of 6 members (4 paid, 2 unclaimed), executed."""
    scn = h.make_scenario(pg_url, members=6, failing=0, unclaimed=2)
    adapter = PayPalAdapter(sandbox, h.CLIENT_ID, h.CLIENT_SECRET, backoff=0.01)
    adapter_for = lambda method: adapter  # noqa: E731
    with tenant_session(scn.engine, scn.tenant_id) as session:
        batch_ids = start_execution(session, scn.tenant_id, scn.run_id)
        session.commit()
    for batch_id in batch_ids:
        run_batch(scn.engine, scn.tenant_id, batch_id, adapter_for, str(tmp_path),
                  poll_interval=0.01, max_polls=5)
    scn.follow = lambda: follow_batches(scn.engine, adapter_for, str(tmp_path))
    return scn


def items(scn) -> dict[str, tuple[str, str | None]]:
    with scn.engine.connect() as conn:
        return {m: (status, item_id) for m, status, item_id in conn.execute(text(
            "SELECT m.external_id, i.status, i.provider_item_id FROM run_items i JOIN members m "
            "ON m.tenant_id = i.tenant_id AND m.id = i.member_id "
            "WHERE i.tenant_id = :t AND i.run_id = :r"), {"t": scn.tenant_id, "r": scn.run_id})}


def entries(scn) -> list[tuple]:
    with scn.engine.connect() as conn:
        return conn.execute(text(
            "SELECT e.id, e.kind, p.account, p.amount FROM journal_entries e "
            "JOIN postings p ON p.tenant_id = e.tenant_id AND p.entry_id = e.id "
            "WHERE e.tenant_id = :t ORDER BY e.id, p.id"), {"t": scn.tenant_id}).all()


def unclaimed_members(scn) -> list[str]:
    return sorted(m for m, e in scn.emails.items() if "+unclaimed" in e)


def test_a_run_with_unclaimed_items_completes_and_keeps_their_money_reserved(paid):
    statuses = {m: s for m, (s, _) in items(paid).items()}
    assert sorted(m for m, s in statuses.items() if s == "unclaimed") == unclaimed_members(paid)
    assert h.run_status(paid) == "completed"
    assert h.batch_statuses(paid) == ["following"]
    balances = h.member_balances(paid.pg_url, paid.tenant_id)
    for member in unclaimed_members(paid):
        assert balances[member]["reserved"] == paid.planned[member]
        assert balances[member]["paid"] == 0


def test_unclaimed_items_returned_after_30_days_go_back_to_the_balance(paid, sandbox):
    h.sandbox_call(sandbox, "/_sandbox/advance", {"days": 31})
    report = paid.follow()  # every tenant's settled batches: ours among them
    [ours] = [row.id for row in h.batch_rows(paid)]
    assert report.followed[ours] == "completed"
    statuses = {m: s for m, (s, _) in items(paid).items()}
    balances = h.member_balances(paid.pg_url, paid.tenant_id)
    for member in unclaimed_members(paid):
        assert statuses[member] == "failed"
        assert balances[member] == {**paid.before[member], "reserved": 0, "paid": 0}
    assert h.batch_statuses(paid) == ["completed"]


def test_an_unclaimed_item_claimed_later_is_paid(paid, sandbox):
    member = unclaimed_members(paid)[0]
    h.sandbox_call(sandbox, f"/_sandbox/items/{items(paid)[member][1]}",
                   {"transaction_status": "SUCCESS"})
    paid.follow()
    assert items(paid)[member][0] == "succeeded"
    balances = h.member_balances(paid.pg_url, paid.tenant_id)
    assert balances[member]["paid"] == paid.planned[member]
    assert balances[member]["reserved"] == 0
    assert h.batch_statuses(paid) == ["following"]  # the other one is still unclaimed


@pytest.mark.parametrize("taken_back", ["REVERSED", "REFUNDED", "BLOCKED"])
def test_an_item_taken_back_after_payment_is_returned_by_a_compensating_entry(
        paid, sandbox, taken_back):
    member = "m001"
    before = entries(paid)
    h.sandbox_call(sandbox, f"/_sandbox/items/{items(paid)[member][1]}",
                   {"transaction_status": taken_back})
    assert paid.tenant_id in {t for t, _ in batches_to_follow(paid.engine)}
    paid.follow()
    assert items(paid)[member][0] == "returned"
    after = entries(paid)
    assert after[:len(before)] == before  # the paid entry is never rewritten
    new = after[len(before):]
    amount = paid.planned[member]
    assert [(kind, account, value) for _, kind, account, value in new] == [
        ("run_returned", "paid", -amount), ("run_returned", "available", amount)]
    balances = h.member_balances(paid.pg_url, paid.tenant_id)
    assert balances[member] == {**paid.before[member], "reserved": 0, "paid": 0}
    # Following again changes nothing.
    paid.follow()
    assert entries(paid) == after


def test_the_follow_up_twice_at_once_moves_each_item_once(paid, sandbox):
    from tests.faults.test_batch_states import at_once
    member = "m002"
    h.sandbox_call(sandbox, f"/_sandbox/items/{items(paid)[member][1]}",
                   {"transaction_status": "REVERSED"})
    before = len(entries(paid))
    at_once(paid.follow, paid.follow)
    assert len(entries(paid)) == before + 2  # one compensating entry, two postings
    assert items(paid)[member][0] == "returned"
