"""The order in which a run's batches are handed to the workers."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from settlement.runs.execute import interleaved


def test_batches_are_interleaved_across_methods_in_proportion_to_their_counts():
    batches = [(1, "amex_mr"), (2, "check"), (3, "check"),
               (4, "paypal"), (5, "paypal"), (6, "paypal"), (7, "paypal")]
    assert interleaved(batches) == [4, 2, 5, 1, 6, 3, 7]


@given(st.lists(st.sampled_from(["check", "paypal", "amex_mr", "bilt"]), max_size=60))
def test_interleaving_keeps_every_batch_once_and_each_methods_batches_in_order(methods):
    batches = list(enumerate(methods, start=1))
    order = interleaved(batches)
    assert sorted(order) == [batch_id for batch_id, _ in batches]
    method_of = dict(batches)
    for method in set(methods):
        mine = [batch_id for batch_id in order if method_of[batch_id] == method]
        assert mine == sorted(mine)
