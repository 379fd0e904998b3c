"""One pass of the lane, as the beat task runs it: send what is due, merge what ended."""

from __future__ import annotations

from dataclasses import dataclass

from workers.provider_batches.client import BatchClients
from workers.provider_batches.merging import poll_submitted
from workers.provider_batches.sending import send_due
from workers.services import JobServices


@dataclass
class LanePass:
    """What one pass did."""

    sent: int = 0
    merged: int = 0


def run_pass(rt: JobServices) -> LanePass:
    """Send due batches, then poll submitted ones; safe to run concurrently with itself."""
    clients = BatchClients(rt.settings.providers)
    try:
        return LanePass(sent=send_due(rt, clients), merged=poll_submitted(rt, clients))
    finally:
        clients.close()
