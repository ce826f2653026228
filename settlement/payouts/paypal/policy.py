"""How long and how often we ask PayPal about a batch.

- While a run executes, its PayPal batches are polled by the batch job (the other methods
  answer with a file days later, which a later job collects).
- A batch whose outcome is unknown (no PayPal id) is asked about by posting the same
  ``sender_batch_id`` again, which PayPal answers with the original batch for 30 days:
  after FIND_WINDOW we stop asking (a post could then pay twice) and an operator
  reconciles it by hand.
- Paid items are read again for FOLLOW_WINDOW after submission, for returns (REFUNDED,
  REVERSED, BLOCKED after SUCCESS) and UNCLAIMED items that end.
"""
from __future__ import annotations

import datetime as dt

POLL_WHILE_RUNNING = ("paypal",)  # methods whose batches the run's jobs poll
FIND_WINDOW = dt.timedelta(days=29)  # inside PayPal's 30-day sender_batch_id memory
FOLLOW_WINDOW = dt.timedelta(days=90)  # paid PayPal items are watched this long for returns


def past_find_window(submitted_at: dt.datetime | None) -> bool:
    """Whether a batch sent at `submitted_at` is too old to be asked about by re-posting."""
    if submitted_at is None:
        return False
    if submitted_at.tzinfo is None:  # SQLite gives naive UTC back
        submitted_at = submitted_at.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc) - submitted_at > FIND_WINDOW
