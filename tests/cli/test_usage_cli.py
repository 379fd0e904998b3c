"""``switchyard usage`` against a real API process (uvicorn), and ``usage rebuild-rollups``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from tests_support import TEST_CONFIG, make_test_settings, new_tenant_key
from typer.testing import CliRunner
from usage_support import NOVEMBER, SEED, seed

from cli.main import app
from infra.launch import ProcessGroup, api_argv, free_port, wait_http
from workers.db import make_engine
from workers.migrate import upgrade
from workers.usage_rollups import ROLLUPS

runner = CliRunner()
RANGE = ["--from", NOVEMBER["from"], "--to", NOVEMBER["to"]]


@dataclass
class RunningApi:
    env: dict[str, str]
    engine: Engine
    tenant_id: str


@pytest.fixture
def running_api(tmp_path: Path, redis_url: str) -> Iterator[RunningApi]:
    """An API process on a SQLite database that holds the seed's usage."""
    settings = make_test_settings(tmp_path, redis_url)
    upgrade(settings)
    engine = make_engine(settings)
    tenant_id, secret = new_tenant_key(engine, {"read"})
    seed(engine, tenant_id, SEED)
    port = free_port()
    env = {
        "SWITCHYARD_CONFIG_FILE": str(TEST_CONFIG),
        "SWITCHYARD_VAR_DIR": str(tmp_path),
        "SWITCHYARD_REDIS_URL": redis_url,
        "SWITCHYARD_DATABASE_URL": "",
        "SWITCHYARD_KEY_PREFIX": settings.key_prefix,
        "SWITCHYARD_API_URL": f"http://127.0.0.1:{port}",
        "SWITCHYARD_API_KEY": secret,
    }
    processes = ProcessGroup(log_dir=tmp_path, env={**os.environ, **env})
    try:
        processes.start("api", api_argv(port, log_level="warning"))
        wait_http(f"{env['SWITCHYARD_API_URL']}/readyz", alive=processes.check_alive)
        yield RunningApi(env, engine, tenant_id)
    finally:
        processes.stop_all()
        engine.dispose()


def plain(output: str) -> str:
    """The output without rich's box drawing and line wrapping."""
    return " ".join(output.replace("│", " ").replace("┃", " ").split())


def test_usage_prints_a_table_per_group_with_totals(running_api: RunningApi) -> None:
    result = runner.invoke(app, ["usage", "--group-by", "model", *RANGE], env=running_api.env)

    assert result.exit_code == 0, result.output
    text = plain(result.output)
    assert "emu-a 4 4 40 20 0.290000 0 0.000000" in text
    assert "emu-b 1 1 10 5 0.020000 0 0.000000" in text
    assert "total 5 5 50 25 0.310000" in text


def test_usage_csv_is_what_the_api_answers(running_api: RunningApi) -> None:
    result = runner.invoke(app, ["usage", "-g", "day,tier", "--csv", *RANGE], env=running_api.env)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    figures = "jobs,calls,prompt_tokens,completion_tokens,cost_usd,cache_hits,cache_savings_usd"
    assert lines[0] == f"day,tier,{figures}"
    assert lines[1:] == [
        "2026-11-03,small,2,2,20,10,0.03,0,0.0",
        "2026-11-04,retry,1,1,10,5,0.04,0,0.0",
        "2026-11-04,small,1,1,10,5,0.08,0,0.0",
        "2026-11-05,small,1,1,10,5,0.16,0,0.0",
    ]


def test_usage_with_a_bad_grouping_prints_the_error_code(running_api: RunningApi) -> None:
    result = runner.invoke(app, ["usage", "--group-by", "week"], env=running_api.env)

    assert result.exit_code == 1
    assert "400 invalid_group_by" in plain(result.output)


def test_rebuild_rollups_restores_what_the_report_reads(running_api: RunningApi) -> None:
    with running_api.engine.begin() as connection:  # usage written before the rollups existed
        connection.execute(delete(ROLLUPS))
    empty = runner.invoke(app, ["usage", "--csv", *RANGE], env=running_api.env)
    assert empty.output.splitlines()[1].startswith("0,0,")

    rebuilt = runner.invoke(app, ["usage", "rebuild-rollups", "--from", "2026-10-01"], env=running_api.env)

    assert rebuilt.exit_code == 0, rebuilt.output
    again = runner.invoke(app, ["usage", "--csv", *RANGE], env=running_api.env)
    assert again.output.splitlines()[1] == "5,5,50,25,0.31,0,0.0"


def test_usage_help_explains_grouping_and_the_backfill() -> None:
    result = runner.invoke(app, ["usage", "--help"])

    assert result.exit_code == 0
    text = plain(result.output)
    assert "--group-by" in text and "metadata.<key>" in text and "rebuild-rollups" in text
    assert runner.invoke(app, ["usage", "rebuild-rollups", "--help"]).exit_code == 0
