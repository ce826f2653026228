"""`settle run reconcile` against the real PayPal protocol (the local sandbox): a batch
PayPal is still processing is one line, not one "missing" line per item; a settled run
reconciles clean; an item we recorded differently from PayPal is listed."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from settlement.db import tenant_session
from settlement.payouts.paypal import PayPalAdapter
from sandboxes.paypal import serve
from settlement.runs.execute import run_batch, start_execution
from settlement.runs.reconcile import reconcile_run
from tests.faults import harness as h

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def paypal():
    server, url = serve(client_id=h.CLIENT_ID, client_secret=h.CLIENT_SECRET,
                        polls_per_step=2)  # a batch is PROCESSING for a few reads
    try:
        yield url
    finally:
        server.shutdown()


def test_reconcile_of_a_paypal_run_while_processing_when_settled_and_when_we_differ(
        pg_url, paypal, tmp_path):
    scn = h.make_scenario(pg_url, members=12, failing=1)
    adapter = PayPalAdapter(paypal, h.CLIENT_ID, h.CLIENT_SECRET, backoff=0.01)
    adapters = lambda method: adapter  # noqa: E731
    with tenant_session(scn.engine, scn.tenant_id) as session:
        [batch_id] = start_execution(session, scn.tenant_id, scn.run_id)
        session.commit()
    outbox = str(tmp_path)
    assert run_batch(scn.engine, scn.tenant_id, batch_id, adapters, outbox,
                     max_polls=0) == "submitted"
    processing = reconcile_run(scn.engine, scn.tenant_id, scn.run_id, adapters, outbox)
    assert [(m.batch_id, m.item_id, m.provider) for m in processing] == [
        (batch_id, None, "processing")]

    assert run_batch(scn.engine, scn.tenant_id, batch_id, adapters, outbox,
                     poll_interval=0.01, max_polls=40) == "completed"
    assert reconcile_run(scn.engine, scn.tenant_id, scn.run_id, adapters, outbox) == []

    with scn.engine.begin() as conn:  # our record of a paid item, changed behind our back
        item_id = conn.execute(text(
            "SELECT min(id) FROM run_items WHERE tenant_id = :t AND run_id = :r "
            "AND status = 'succeeded'"), {"t": scn.tenant_id, "r": scn.run_id}).scalar()
        conn.execute(text("UPDATE run_items SET status = 'failed' WHERE tenant_id = :t "
                          "AND id = :i"), {"t": scn.tenant_id, "i": item_id})
    [differs] = reconcile_run(scn.engine, scn.tenant_id, scn.run_id, adapters, outbox)
    assert (differs.item_id, differs.ours, differs.provider) == (item_id, "failed", "SUCCESS")
