"""The active kill switches as every worker reads them before each provider call.

The ``kill_switches`` table is the truth; Redis holds a copy for the hot path, one HASH
(``RedisKeys.kill_switches``: ``s:<id>`` -> the switch as JSON, and ``built``: the version it
was built from) beside a version STRING (``RedisKeys.kill_switch_version``) that every change
replaces with a fresh random token *after* its transaction commits.

A check is one command: ``MGET`` of the version and of ``RedisKeys.kill_switch_built`` (the
HASH's stamp, kept beside it so the check reads two short strings). Equal and already parsed
by this process: the switches in memory are current. Otherwise the process rebuilds the HASH
from the database, stamped with the version it read *before* the query, so a copy stamped
with the current version always holds every change whose token came before it. A flushed
Redis (both keys gone) gets a new version and a rebuild: a flush never lifts a switch. The
HASH also expires after ``COPY_TTL_S``, which bounds how long a change whose version write
was lost (Redis down right after the commit) can go unseen.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from redis import Redis
from redis.typing import EncodableT, FieldT
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from schemas.spend_tables import KillSwitch
from workers.keys import RedisKeys

COPY_TTL_S = 30
BUILT = b"built"


@dataclass(frozen=True)
class ActiveSwitch:
    """What a worker needs of an active switch to match a call; ``since``: epoch seconds."""

    id: str
    scope: str
    value: str
    tenant_id: str | None
    fail_queued: bool
    since: float

    @classmethod
    def from_row(cls, row: KillSwitch) -> ActiveSwitch:
        return cls(row.id, row.scope, row.value, row.tenant_id, row.fail_queued, row.created_at.timestamp())


@dataclass(frozen=True)
class CallTarget:
    """What a call is: whose (tenant, API key) and where it goes (tier, model alias, provider)."""

    tenant_id: str
    api_key_id: str | None
    tier: str
    model: str
    provider: str

    def named(self, scope: str) -> str | None:
        """What this call is in ``scope``'s terms ('' for ``all``)."""
        if scope == "all":
            return ""
        attribute = TARGET_FIELDS.get(scope)
        return getattr(self, attribute) if attribute is not None else None


TARGET_FIELDS = {
    "tenant": "tenant_id",
    "api_key": "api_key_id",
    "tier": "tier",
    "model": "model",
    "provider": "provider",
}


def applies(switch: ActiveSwitch, target: CallTarget) -> bool:
    """Whether ``switch`` stops a call to ``target``."""
    if switch.tenant_id is not None and switch.tenant_id != target.tenant_id:
        return False
    return target.named(switch.scope) == switch.value


def matching(switches: Iterable[ActiveSwitch], target: CallTarget) -> ActiveSwitch | None:
    """The switch that stops the call, if any; one that fails queued jobs wins over one that holds them."""
    found = [switch for switch in switches if applies(switch, target)]
    return max(found, key=lambda switch: switch.fail_queued) if found else None


def announce_change(redis: Redis, keys: RedisKeys) -> None:
    """Tell every worker the switches changed: call it after the change's transaction commits."""
    redis.set(keys.kill_switch_version, new_version())


def new_version() -> str:
    return secrets.token_hex(8)


class KillSwitchBoard:
    """One process's view of the active switches, checked against Redis on every read."""

    def __init__(self, redis: Redis, keys: RedisKeys, engine: Engine) -> None:
        self.redis = redis
        self.keys = keys
        self.engine = engine
        # (version, switches) replaced as a whole: the threads of a threads-pool worker share it.
        self._seen: tuple[bytes | str, tuple[ActiveSwitch, ...]] = (b"", ())

    def active(self) -> tuple[ActiveSwitch, ...]:
        """The active switches, current as of this call's round trip."""
        version, built = self.redis.mget(self.keys.kill_switch_version, self.keys.kill_switch_built)
        if version is None:  # Redis lost it (flush, restart): start a new version
            self.redis.set(self.keys.kill_switch_version, new_version(), nx=True)
            version = self.redis.get(self.keys.kill_switch_version) or b""
        seen_version, seen = self._seen
        if built == version and version == seen_version:
            return seen
        switches = self._read_copy(version) if built == version else None
        if switches is None:
            switches = self.rebuild(version)
        self._seen = (version, switches)
        return switches

    def rebuild(self, version: bytes | str) -> tuple[ActiveSwitch, ...]:
        """Read the active switches from the database and write Redis's copy, stamped ``version``."""
        with Session(self.engine) as session:
            rows = session.exec(select(KillSwitch).where(col(KillSwitch.lifted_at).is_(None))).all()
        switches = tuple(ActiveSwitch.from_row(row) for row in rows)
        mapping: dict[FieldT, EncodableT] = {BUILT: version}
        mapping.update({f"s:{switch.id}": json.dumps(asdict(switch)) for switch in switches})
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.kill_switches)
        pipe.hset(self.keys.kill_switches, mapping=mapping)
        pipe.expire(self.keys.kill_switches, COPY_TTL_S)
        pipe.set(self.keys.kill_switch_built, version, ex=COPY_TTL_S)
        pipe.execute()
        return switches

    def _read_copy(self, version: bytes | str) -> tuple[ActiveSwitch, ...] | None:
        copy = self.redis.hgetall(self.keys.kill_switches)
        if copy.get(BUILT) != version:  # rebuilt or expired in between
            return None
        return tuple(ActiveSwitch(**json.loads(raw)) for name, raw in copy.items() if name != BUILT)


def seconds_since(switch: ActiveSwitch) -> float:
    """How long the switch has been set."""
    return max(0.0, time.time() - switch.since)
