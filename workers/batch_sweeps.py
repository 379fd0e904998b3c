"""The reconciler's passes over batches: expire those past their window, end those left open.

Both end batches through :meth:`workers.outcomes.Outcomes.end_batch`, so an ended batch is
announced the same way whichever path ended it.
"""

from __future__ import annotations

from workers import batch_store
from workers.outcomes import Outcomes

SWEEP_LIMIT = 100


def expire_due(outcomes: Outcomes) -> int:
    """Expire batches whose completion window passed, as OpenAI does: queued lines are
    cancelled (``batch_expired``), running ones finish, then the batch is ``expired``."""
    expired = 0
    for batch_id in batch_store.past_window(outcomes.engine, SWEEP_LIMIT):
        with outcomes.engine.begin() as connection:
            if not batch_store.mark_expiring(connection, batch_id):
                continue
            batch_store.cancel_queued(connection, batch_id, "batch_expired")
        outcomes.end_batch(batch_id)
        expired += 1
    return expired


def repair(outcomes: Outcomes) -> int:
    """End batches whose jobs all ended but that were left open (a crash between the two)."""
    ended = 0
    for batch_id in batch_store.unfinished_batches(outcomes.engine, SWEEP_LIMIT):
        ended += outcomes.end_batch(batch_id) is not None
    return ended
