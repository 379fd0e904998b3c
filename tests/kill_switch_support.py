"""Helpers the kill switch tests share: set and lift switches as the CLI on the host would,
and clear them between tests on a database the session shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlmodel import Session

from schemas.kill_switches import KillSwitchCreate
from schemas.spend_tables import KillSwitch
from workers import kill_switches
from workers.audit import CLI
from workers.kill_switch_board import announce_change
from workers.runtime import Runtime


def remove_switches(rt: Runtime) -> None:
    """Delete every kill switch row (history too) and tell the workers."""
    with Session(rt.engine) as session:
        session.execute(delete(KillSwitch))
        session.commit()
    announce_change(rt.redis, rt.keys)


def set_switch(rt: Runtime, **fields: Any) -> str:
    """Set a switch as the host's CLI; its id."""
    with Session(rt.engine, expire_on_commit=False) as session:
        spec = KillSwitchCreate.model_validate(fields)
        return kill_switches.set_switch(session, rt.redis, rt.keys, rt.settings, CLI, spec).id


def lift_switch(rt: Runtime, switch_id: str) -> None:
    """Lift a switch as the host's CLI."""
    with Session(rt.engine, expire_on_commit=False) as session:
        kill_switches.lift_switch(session, rt.redis, rt.keys, CLI, switch_id)
