"""Parking for the provider's Batch API: which jobs go to a provider batch, and parking them there.

A job goes to the lane when it is ``priority: batch`` with ``completion_window: 24h``, a chat
job, has never been in a provider batch, and the model its tier's chain would call now is
served by a provider with ``batch_api = true`` whose adapter speaks the Batch API. Parking
joins the model's open batch and gives the job a lease above the 24 h window, in one
transaction; the attempt then ends with no call (the lane settles it: docs/provider-batches.md).
It runs before the tenant's running slot: a parked job holds none. A job a kill switch stops
is not parked (a batch would spend later, out of the switch's reach): it runs on to the gate.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from schemas.openai import ChatRequest
from schemas.settings import Settings
from schemas.tables import Job
from workers.chain import CallContext, Middleware, Route, SkipAttempt
from workers.kill_switch_board import CallTarget, KillSwitchBoard, matching
from workers.middleware.routing import next_model
from workers.provider_batches import batch_store
from workers.provider_batches.lines import encode_line, request_line
from workers.providers.registry import adapter_traits


def lane_route(settings: Settings, job: Job) -> Route | None:
    """The model a job would go to through its provider's Batch API, or None if not eligible."""
    if job.priority != "batch" or job.completion_window != "24h" or job.kind != "chat":
        return None
    tier = settings.tiers.get(job.tier)
    if job.provider_batch_id is not None or tier is None:  # one lane attempt only
        return None
    alias = next_model(tier, ChatRequest.model_validate(job.request).model, job.attempt_log or [])
    if alias is None:
        return None
    model = settings.models[alias]
    provider = settings.providers[model.provider]
    return Route(alias, model) if provider.batch_api and adapter_traits(provider.kind).batch_api else None


def park_if_eligible(
    engine: Engine, settings: Settings, job: Job, stopped: Callable[[Job, Route], bool] | None = None
) -> bool:
    """Park a claimed job in its model's open provider batch; False if it runs live instead.

    ``stopped``: whether a kill switch stops the job's call on that route; such a job is not
    parked, so it goes on to the live lane's gate and waits there (workers/middleware/kill_switch.py).
    """
    route = lane_route(settings, job)
    if route is None or (stopped is not None and stopped(job, route)):
        return False
    line = encode_line(request_line(job, route.model, settings.tiers[job.tier].default_max_tokens))
    limits = settings.provider_batches
    try:
        with engine.begin() as connection:
            batch_id = batch_store.join_open_batch(connection, route.provider, route.alias, len(line), limits)
            parked = batch_store.park_job(
                connection, job, batch_id, limits.lane_lease_s, model=route.alias, provider=route.provider
            )
            if not parked:
                raise _LeaseLost
    except _LeaseLost:
        pass  # another worker holds the job now; the join was rolled back with the transaction
    return True


class _LeaseLost(Exception):
    """The job's claim did not hold: roll the batch join back."""


class ProviderBatchParking(Middleware):
    """Ends the attempt with no call when the job was parked for its provider's Batch API."""

    def __init__(self, engine: Engine, kill_switches: KillSwitchBoard | None = None) -> None:
        self.engine = engine
        self.kill_switches = kill_switches

    def before_call(self, ctx: CallContext) -> None:
        if park_if_eligible(self.engine, ctx.settings, ctx.job, self._stopped):
            raise SkipAttempt

    def _stopped(self, job: Job, route: Route) -> bool:
        if self.kill_switches is None:
            return False
        target = CallTarget(job.tenant_id, job.api_key_id, job.tier, route.alias, route.provider)
        return matching(self.kill_switches.active(), target) is not None
