"""The kill switch gate: no provider call starts while an admin's switch stops it.

Runs right after routing, so the switch can name the routed model or provider as well as the
job's tenant, API key or tier. It reads the active switches on every attempt (one Redis round
trip, workers/kill_switch_board.py), so a switch is in force on every worker at their next
call; calls already past the gate finish.

A stopped job is handed back, not failed (``KillSwitchEngaged``, not an attempt): it looks
again after ``POLL_S`` seconds plus jitter, or a tenth of the time the switch has been set
(at most ``MAX_POLL_S``), so a long stop does not churn a large backlog through the workers
every second. A switch set with ``fail_queued`` fails the job with ``kill_switch`` instead.

Rate limiting may move the call to another model of the chain for capacity after this gate
ran; ``wrap_call`` checks that model against the same switches before the call starts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import structlog

from schemas.spend_errors import KillSwitchEngaged, KillSwitchFailsQueued
from workers.chain import CallContext, Middleware, ProviderCall
from workers.kill_switch_board import ActiveSwitch, CallTarget, KillSwitchBoard, matching, seconds_since

POLL_S = 1.0
MAX_POLL_S = 10.0
log = structlog.get_logger("switchyard.kill_switch")


@dataclass
class CheckedAgainst:
    """The switches this attempt was checked against, and the model they were checked for."""

    switches: tuple[ActiveSwitch, ...] = ()
    model: str | None = None


class KillSwitchGate(Middleware):
    """Stops the attempt before its provider call when an active switch matches it."""

    def __init__(self, board: KillSwitchBoard, rng: random.Random | None = None) -> None:
        self.board = board
        self._rng = rng or random.Random()

    def before_call(self, ctx: CallContext) -> None:
        checked = ctx.state(CheckedAgainst)
        checked.switches = self.board.active()
        self._check(ctx, checked)

    def wrap_call(self, ctx: CallContext, call: ProviderCall) -> ProviderCall:
        checked = ctx.state(CheckedAgainst)
        if ctx.route is not None and ctx.route.alias != checked.model:  # moved after the gate
            self._check(ctx, checked)
        return call

    def _check(self, ctx: CallContext, checked: CheckedAgainst) -> None:
        assert ctx.route is not None, "the kill switch gate runs after routing"
        job, route = ctx.job, ctx.route
        checked.model = route.alias
        target = CallTarget(job.tenant_id, job.api_key_id, job.tier, route.alias, route.provider)
        switch = matching(checked.switches, target)
        if switch is None:
            return
        if switch.fail_queued:
            raise KillSwitchFailsQueued(_message(switch), kill_switch=switch.id)
        wait = min(MAX_POLL_S, max(POLL_S, seconds_since(switch) / 10)) * (1 + self._rng.uniform(0, 0.5))
        log.debug("kill_switch_hold", job=job.id, kill_switch=switch.id, retry_in_s=round(wait, 3))
        raise KillSwitchEngaged(_message(switch), retry_after=wait, kill_switch=switch.id)


def _message(switch: ActiveSwitch) -> str:
    what = "every call" if switch.scope == "all" else f"{switch.scope} {switch.value!r}"
    where = f" of tenant {switch.tenant_id}" if switch.tenant_id and switch.scope != "tenant" else ""
    ending = "queued jobs fail" if switch.fail_queued else "the job waits until it is lifted"
    return f"Kill switch {switch.id} stops {what}{where}; {ending}."
