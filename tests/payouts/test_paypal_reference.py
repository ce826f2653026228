"""A run item's reference is built and read back by one module."""
from __future__ import annotations

from settlement.payouts.paypal.reference import (ItemReference, item_reference,
                                                 parse_item_reference)


def test_a_reference_reads_back_as_the_item_it_was_built_for():
    reference = item_reference("us-cashback", 12, 345)
    assert reference == "us-cashback-12-345"
    assert parse_item_reference(reference) == ItemReference("us-cashback", 12, 345)


def test_references_not_of_our_form_name_no_item():
    for other in ("x1-2", "US-cashback-1-2", "us-cashback-1-2-", "us-cashback-1-" + "9" * 19,
                  "-1-2", "us cashback-1-2"):
        assert parse_item_reference(other) is None, other
