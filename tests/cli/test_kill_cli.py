"""`switchyard kill` against the real API of the end-to-end stack: set, list and lift a switch
with a platform admin key, and a clear refusal for any other key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_stack import Stack
from sqlmodel import Session, select
from tests_support import TEST_CONFIG
from typer.testing import CliRunner, Result

from api.keys import create_platform_key
from cli.main import app
from schemas.spend_tables import AuditEntry
from workers.db import make_engine

runner = CliRunner()


@pytest.fixture
def platform_key(stack: Stack) -> Iterator[str]:
    engine = make_engine(stack.settings)
    with Session(engine) as session:
        secret = create_platform_key(session, "kill switch cli test")
        session.commit()
    engine.dispose()
    yield secret


def kill(stack: Stack, tmp_path: Path, *args: str, key: str | None = None) -> Result:
    env = {
        "SWITCHYARD_API_URL": stack.api_url,
        "SWITCHYARD_CONFIG_FILE": str(TEST_CONFIG),
        "SWITCHYARD_VAR_DIR": str(tmp_path),
        "SWITCHYARD_API_KEY": key or "",
        "COLUMNS": "200",
    }
    return runner.invoke(app, ["kill", *args], env=env)


def audit_actions(stack: Stack, switch_id: str) -> list[tuple[str, str | None]]:
    engine = make_engine(stack.settings)
    with Session(engine) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.target_id == switch_id)).all()
        found = [(row.action, row.actor_key_id) for row in rows]
    engine.dispose()
    return found


def test_kill_sets_lists_and_lifts_a_switch(stack: Stack, tmp_path: Path, platform_key: str) -> None:
    done = kill(
        stack,
        tmp_path,
        "set",
        "--scope",
        "model",
        "--value",
        "emu-kill",
        "--reason",
        "cli test",
        key=platform_key,
    )
    assert done.exit_code == 0, done.output
    switch_id = done.output.split()[1].rstrip(":")
    assert switch_id.startswith("ks_") and "model emu-kill" in done.output

    listed = kill(stack, tmp_path, "list", key=platform_key)
    assert listed.exit_code == 0 and switch_id in listed.output and "cli test" in listed.output

    lifted = kill(stack, tmp_path, "lift", switch_id, key=platform_key)
    assert lifted.exit_code == 0 and f"lifted {switch_id}" in lifted.output
    assert switch_id not in kill(stack, tmp_path, "list", key=platform_key).output
    assert switch_id in kill(stack, tmp_path, "list", "--all", key=platform_key).output
    assert [action for action, actor in audit_actions(stack, switch_id) if actor] == [
        "kill_switch.set",
        "kill_switch.lifted",
    ]


def test_kill_refuses_a_tenant_key_and_says_which_key_it_needs(stack: Stack, tmp_path: Path) -> None:
    refused = kill(stack, tmp_path, "set", "--scope", "all", key=stack.keys["a"])
    assert refused.exit_code == 1
    assert "403 insufficient_scope" in refused.output and "needs a platform admin key" in refused.output


def test_kill_without_any_key_says_how_to_get_one(stack: Stack, tmp_path: Path) -> None:
    refused = kill(stack, tmp_path, "list")
    assert refused.exit_code != 0 and "needs a platform admin key" in refused.output


def test_kill_passes_on_the_apis_error_for_an_unknown_model(
    stack: Stack, tmp_path: Path, platform_key: str
) -> None:
    refused = kill(stack, tmp_path, "set", "--scope", "model", "--value", "no-such-model", key=platform_key)
    assert refused.exit_code == 1 and "400 unknown_model" in refused.output
