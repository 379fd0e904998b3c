"""Budgets: reserve the call's maximum cost before it, settle to its actual cost after.

Runs after rate limiting, so the reservation is for the model that will be called (rate-limit
acquire -> budget reserve -> provider call). Every budget that applies (the tenant's and the
job's key's, narrowed by tier and model) is reserved in one atomic step, or none is
(workers/budgets/ledger.py). The reservation is held for the call's timeout plus a lease at
most, so a worker killed mid-call frees it when its lease would have expired.

The settle comes in ``after_attempt``, after the attempt's usage row is committed: a counter
rebuilt from the database at any moment then already holds every settled call. A call that
failed is settled at what the usage table records for it (nothing); an attempt that made no
call just releases its reservation.

When a budget has no room: ``on_exhausted = "fail"`` fails the job with ``budget_exceeded``
(not retried); ``"downgrade"`` moves the job to the budget's ``downgrade_tier`` and publishes
it there (once per job, if that tier's budgets have room); ``"wait"`` hands the job back until
the period resets (``budget_wait``, not an attempt).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from schemas.spend_errors import BudgetWait
from schemas.tables import utcnow
from workers import store
from workers.budgets.control import BudgetControl, budget_exceeded
from workers.budgets.estimate import NOTHING, Charge, actual_charge, max_charge
from workers.budgets.ledger import Figures, Hold, Refusal
from workers.chain import CallContext, Middleware, SkipAttempt
from workers.dispatch import Dispatcher
from workers.middleware.usage import route_cost_usd
from workers.providers.registry import ProviderRegistry

DOWNGRADE_RULE = "budget_downgrade"


@dataclass
class HeldBudget:
    """The reservation this attempt holds until it is settled."""

    hold: Hold | None = None


class BudgetReservation(Middleware):
    """Reserve before the call, settle after the attempt; fail, downgrade or wait when exhausted."""

    def __init__(
        self, budgets: BudgetControl, providers: ProviderRegistry, engine: Engine, dispatcher: Dispatcher
    ) -> None:
        self.budgets = budgets
        self.providers = providers
        self.engine = engine
        self.dispatcher = dispatcher

    def before_call(self, ctx: CallContext) -> None:
        assert ctx.route is not None
        job = ctx.job
        budgets = self.budgets.applicable(job.tenant_id, job.api_key_id, job.tier, [ctx.route.alias])
        if not budgets:
            return
        prompt = self.providers.get(ctx.route.provider).estimate_prompt_tokens(ctx.request)
        charge = max_charge(ctx.route, ctx.request, prompt)
        outcome = self.budgets.reserve(budgets, f"{job.id}:{job.attempts}", charge, self._hold_s(ctx))
        if isinstance(outcome, Refusal):
            self._exhausted(ctx, outcome.figures)
        else:
            ctx.state(HeldBudget).hold = outcome

    def after_call(self, ctx: CallContext) -> None:
        # A provider batch's line (PolicyChain.record) reserved nothing: count what it cost.
        route, response = ctx.route, ctx.response
        if route is None or route.provider_batch is None or response is None:
            return
        usage = response.completion.usage
        job = ctx.job
        budgets = self.budgets.applicable(job.tenant_id, job.api_key_id, job.tier, [route.alias])
        cost = route_cost_usd(route, usage)
        self.budgets.count(budgets, actual_charge(cost, usage.prompt_tokens, usage.completion_tokens), job.id)

    def after_attempt(self, ctx: CallContext, settled: bool) -> None:
        held = ctx.state(HeldBudget)
        hold, held.hold = held.hold, None
        if hold is not None:
            self.budgets.settle(hold, self._actual(ctx))

    @staticmethod
    def _actual(ctx: CallContext) -> Charge:
        # What the usage table records for the call: its row; an attempt with no call costs nothing.
        row = ctx.usage_row
        if row is not None:
            return actual_charge(row.cost_usd, row.prompt_tokens, row.completion_tokens)
        if ctx.called and ctx.response is not None:  # the outcome was not written, yet it was paid
            usage = ctx.response.completion.usage
            return actual_charge(ctx.cost_usd, usage.prompt_tokens, usage.completion_tokens)
        return NOTHING

    @staticmethod
    def _hold_s(ctx: CallContext) -> float:
        # The longest a live worker takes from here to its settle: the call's timeout plus a
        # lease for writing the outcome; a worker killed mid-call frees it no later.
        assert ctx.route is not None
        settings = ctx.settings
        timeout_s = min(settings.provider_timeout_s, settings.providers[ctx.route.provider].timeout_s)
        return timeout_s + settings.lease_s

    def _exhausted(self, ctx: CallContext, figures: Figures) -> None:
        budget = figures.budget
        if budget.on_exhausted == "wait":
            wait = figures.period.seconds_left(utcnow())
            raise BudgetWait(
                f"Budget {budget.name or budget.id!r} is exhausted until its period resets.", retry_after=wait
            )
        if budget.on_exhausted == "downgrade":
            self._downgrade(ctx, figures)
        raise budget_exceeded(figures)

    def _downgrade(self, ctx: CallContext, figures: Figures) -> None:
        """Move the job to the budget's cheaper tier and publish it there; returns if it cannot."""
        job, target = ctx.job, figures.budget.downgrade_tier
        if target is None or target == job.tier or target not in ctx.settings.tiers:
            return
        if ctx.settings.tier_kind(target) != job.kind:  # a tenant-wide budget names one tier for all
            return
        if (job.routing or {}).get("rule") == DOWNGRADE_RULE:
            return  # once per job: a chain of downgrades could loop
        models = ctx.settings.tiers[target].models
        if self.budgets.exhausted(self.budgets.applicable(job.tenant_id, job.api_key_id, target, models)):
            return
        routing = {"rule": DOWNGRADE_RULE, "from": job.tier, "to": target, "budget": figures.budget.id}
        moved = store.hand_back(
            self.engine,
            job,
            utcnow(),
            published=False,
            tier=target,
            routing=routing,
            attempts=job.attempts - 1,
        )
        if moved is not None:
            # Commit, publish, mark: a crash in between leaves an orphan the reconciler publishes.
            self.dispatcher.publish(job.id, target, job.priority, job.tenant_id)
            store.mark_published(self.engine, [job.id])
        raise SkipAttempt
