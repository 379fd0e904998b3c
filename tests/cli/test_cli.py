"""The `switchyard` command line: help texts, tenants and keys, and submit against a real API."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_stack import Stack
from sqlmodel import Session, select
from tests_support import TEST_CONFIG
from typer.testing import CliRunner

from cli.main import app
from schemas.settings import load_settings
from schemas.tables import ApiKey, Tenant
from workers.db import make_engine
from workers.migrate import upgrade

runner = CliRunner()


def plain(output: str) -> str:
    """The output without rich's box drawing and line wrapping."""
    return " ".join(output.replace("│", " ").split())


COMMANDS = [[], ["up"], ["migrate"], ["worker"], ["procfile"], ["emulator"], ["submit"], ["jobs", "show"],
            ["tenants", "create"], ["tenants", "list"], ["tenants", "set-limits"], ["keys", "create"],
            ["keys", "demo"]]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "switchyard")
def test_every_command_explains_itself_with_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    assert len(result.output.split("Usage", 1)[1].strip()) > 40


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SWITCHYARD_CONFIG_FILE", str(TEST_CONFIG))
    monkeypatch.setenv("SWITCHYARD_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", "")
    upgrade(load_settings())
    return tmp_path


def test_tenant_and_key_creation_prints_a_key_stored_only_as_its_hash(cli_env: Path) -> None:
    created = runner.invoke(app, ["tenants", "create", "acme"])
    assert created.exit_code == 0 and created.output.startswith("ten_")
    key = runner.invoke(app, ["keys", "create", "acme", "--scope", "read"])
    secret = key.output.strip()
    assert key.exit_code == 0 and secret.startswith("sy_")
    with Session(make_engine(load_settings())) as session:
        stored = session.exec(select(ApiKey)).one()
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert stored.scopes == "read"
    assert secret not in json.dumps(stored.model_dump(mode="json"))


def test_tenant_limits_are_set_listed_and_reset(cli_env: Path) -> None:
    assert runner.invoke(app, ["tenants", "create", "bulk", "--rpm", "50"]).exit_code == 0
    changed = runner.invoke(app, ["tenants", "set-limits", "bulk", "--max-running", "4"])
    assert changed.exit_code == 0 and "rpm=50\tmax_running=4" in changed.output
    assert "bulk\trpm=50\tmax_running=4" in runner.invoke(app, ["tenants", "list"]).output
    reset = runner.invoke(app, ["tenants", "set-limits", "bulk", "--default"])
    assert "rpm=default\tmax_running=default" in reset.output
    with Session(make_engine(load_settings())) as session:
        tenant = session.exec(select(Tenant)).one()
    assert (tenant.rpm_limit, tenant.max_running_jobs) == (None, None)


def test_key_for_an_unknown_tenant_says_how_to_create_one(cli_env: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "nobody"])
    assert result.exit_code != 0
    assert "switchyard tenants create" in plain(result.output)


def test_demo_key_before_first_run_says_to_run_up(cli_env: Path) -> None:
    result = runner.invoke(app, ["keys", "demo"])
    assert result.exit_code != 0
    assert "switchyard up" in plain(result.output)


def test_submit_with_wait_prints_the_finished_job_and_its_answer(e2e: Stack) -> None:
    env = {**os.environ, "SWITCHYARD_API_URL": e2e.api_url, "SWITCHYARD_API_KEY": e2e.keys["a"]}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "submit", "Tell me about trains", "--tier", "small", "--wait"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"status": "succeeded"' in done.stdout
    assert "answer: Emulated answer to: Tell me about trains" in done.stdout


def test_submit_to_an_unknown_tier_prints_the_error_code_and_fails(e2e: Stack) -> None:
    env = {**os.environ, "SWITCHYARD_API_URL": e2e.api_url, "SWITCHYARD_API_KEY": e2e.keys["a"]}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "submit", "hello", "--tier", "nope"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "unknown_tier" in done.stderr and "known tiers" in done.stderr
