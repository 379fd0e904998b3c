"""Kill switches: which calls each scope stops, and the workers' copy in Redis, which a lost
Redis never empties (real Redis, SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kill_switch_support import lift_switch, remove_switches, set_switch
from tests_support import tier_runtime

from workers.kill_switch_board import ActiveSwitch, CallTarget, KillSwitchBoard, applies, matching
from workers.runtime import Runtime

CALL = CallTarget(tenant_id="ten_a", api_key_id="key_a", tier="small", model="emu-a", provider="emulator")


def switch(
    scope: str, value: str = "", tenant_id: str | None = None, fail_queued: bool = False
) -> ActiveSwitch:
    return ActiveSwitch(f"ks_{scope}_{value}", scope, value, tenant_id, fail_queued, since=0.0)


@pytest.mark.parametrize(
    ("scope", "hit", "miss"),
    [
        ("tenant", "ten_a", "ten_b"),
        ("api_key", "key_a", "key_b"),
        ("tier", "small", "large"),
        ("model", "emu-a", "emu-b"),
        ("provider", "emulator", "openai"),
    ],
)
def test_each_scope_stops_the_calls_it_names_and_no_others(scope: str, hit: str, miss: str) -> None:
    assert applies(switch(scope, hit), CALL)
    assert not applies(switch(scope, miss), CALL)


def test_scope_all_stops_every_call_and_a_key_switch_spares_a_job_without_a_key() -> None:
    assert applies(switch("all"), CALL)
    keyless = CallTarget("ten_a", None, "small", "emu-a", "emulator")
    assert applies(switch("all"), keyless)
    assert not applies(switch("api_key", "key_a"), keyless)


def test_a_switch_restricted_to_a_tenant_stops_only_that_tenants_calls() -> None:
    assert applies(switch("model", "emu-a", tenant_id="ten_a"), CALL)
    assert not applies(switch("model", "emu-a", tenant_id="ten_b"), CALL)
    assert not applies(switch("all", tenant_id="ten_b"), CALL)


def test_a_switch_that_fails_queued_jobs_wins_over_one_that_holds_them() -> None:
    holding, failing = switch("tier", "small"), switch("model", "emu-a", fail_queued=True)
    assert matching([holding, failing, switch("tier", "large")], CALL) == failing
    assert matching([holding], CALL) == holding
    assert matching([switch("tier", "large")], CALL) is None


@pytest.fixture
def runtime(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Runtime]:
    """A runtime on a database with no kill switch (PostgreSQL's is shared by the session)."""
    tier = f"ks{uuid.uuid4().hex[:8]}"
    with tier_runtime(tmp_path, redis_url, database_url, tier, ["emu-a", "emu-b"]) as rt:
        remove_switches(rt)
        yield rt
        remove_switches(rt)


def ids(board: KillSwitchBoard) -> set[str]:
    return {active.id for active in board.active()}


def test_every_process_sees_a_set_or_lifted_switch_at_its_next_read(runtime: Runtime) -> None:
    boards = [KillSwitchBoard(runtime.redis, runtime.keys, runtime.engine) for _ in range(2)]
    assert [ids(board) for board in boards] == [set(), set()]

    model_stop = set_switch(runtime, scope="model", value="emu-a")
    assert [ids(board) for board in boards] == [{model_stop}, {model_stop}]

    everything = set_switch(runtime, scope="all", fail_queued=True)
    lift_switch(runtime, model_stop)
    assert [ids(board) for board in boards] == [{everything}, {everything}]
    [active] = boards[0].active()
    assert (active.scope, active.value, active.tenant_id, active.fail_queued) == ("all", "", None, True)


def test_a_flushed_redis_is_rebuilt_from_the_database_and_the_switch_still_holds(runtime: Runtime) -> None:
    board = KillSwitchBoard(runtime.redis, runtime.keys, runtime.engine)
    stop = set_switch(runtime, scope="tier", value=next(iter(runtime.settings.tiers)))
    assert ids(board) == {stop}

    # What FLUSHDB does to these keys (the test Redis db is shared with the session's stack).
    keys = runtime.keys
    runtime.redis.delete(keys.kill_switches, keys.kill_switch_built, keys.kill_switch_version)

    fresh = KillSwitchBoard(runtime.redis, runtime.keys, runtime.engine)
    assert ids(board) == {stop} and ids(fresh) == {stop}
    assert runtime.redis.exists(keys.kill_switches, keys.kill_switch_built, keys.kill_switch_version) == 3
    lift_switch(runtime, stop)
    assert ids(board) == set() and ids(fresh) == set()


def test_an_expired_copy_or_one_built_from_an_older_version_is_rebuilt(runtime: Runtime) -> None:
    board = KillSwitchBoard(runtime.redis, runtime.keys, runtime.engine)
    stop = set_switch(runtime, scope="provider", value="emulator")
    assert ids(board) == {stop}
    assert 0 < runtime.redis.ttl(runtime.keys.kill_switches) <= 30

    # Expired (or evicted): the version stays, the copy and its stamp are gone.
    runtime.redis.delete(runtime.keys.kill_switches, runtime.keys.kill_switch_built)
    assert ids(board) == {stop} and runtime.redis.exists(runtime.keys.kill_switches)
    assert ids(KillSwitchBoard(runtime.redis, runtime.keys, runtime.engine)) == {stop}

    # A copy built from a read that came before the newest change (stamped with the old
    # version) is not trusted: the reader rebuilds from the database.
    runtime.redis.hset(runtime.keys.kill_switches, "built", "an-older-version")
    runtime.redis.hdel(runtime.keys.kill_switches, f"s:{stop}")
    assert ids(KillSwitchBoard(runtime.redis, runtime.keys, runtime.engine)) == {stop}
