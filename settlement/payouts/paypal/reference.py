"""A run item's reference: built here for every payout line, read back here from what
PayPal sends (the ``sender_item_id`` of a webhook event).

``<tenant slug>-<run id>-<item id>``: unique within a batch (PayPal does not de-duplicate
items by ``sender_item_id``) and enough to find the item's batch without a key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_REFERENCE = re.compile(
    r"^(?P<slug>[a-z0-9][a-z0-9-]*)-(?P<run>[0-9]{1,18})-(?P<item>[0-9]{1,18})$")


@dataclass(frozen=True)
class ItemReference:
    slug: str
    run_id: int
    item_id: int


def item_reference(slug: str, run_id: int, item_id: int) -> str:
    return f"{slug}-{run_id}-{item_id}"


def parse_item_reference(reference: str) -> ItemReference | None:
    """The reference's parts, or None when it is not one of ours."""
    match = _REFERENCE.match(reference)
    if match is None:
        return None
    return ItemReference(match["slug"], int(match["run"]), int(match["item"]))
