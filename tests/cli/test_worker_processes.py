"""`switchyard up` / `switchyard worker`: a local-model tier gets a threads worker sized to batch."""

from __future__ import annotations

import os

import pytest
from tests_support import TEST_CONFIG
from typer.testing import CliRunner

from cli.main import app
from cli.processes import process_table, tier_worker_argv
from schemas.settings import load_settings


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_a_local_model_tier_runs_in_threads_as_many_as_its_batch() -> None:
    settings = load_settings(config_file=TEST_CONFIG)

    for tier in ("local", "embed"):
        argv = tier_worker_argv(settings, tier)
        assert option(argv, "-P") == "threads"
        assert option(argv, "-c") == str(settings.providers["local"].max_batch_size) == "8"
        assert f"tier.{tier}.live" in option(argv, "-Q").split(",")


def test_a_remote_tier_keeps_the_prefork_pool() -> None:
    argv = tier_worker_argv(load_settings(config_file=TEST_CONFIG), "small")

    assert option(argv, "-P") == "prefork" and option(argv, "-c") == "4"


def test_the_default_config_starts_a_worker_for_the_embed_tier() -> None:
    table = process_table(load_settings())

    assert option(table["worker-embed"], "-P") == "threads"
    assert option(table["worker-embed"], "-c") == "64"
    assert option(table["worker-local"], "-c") == "16"


def test_the_default_config_starts_a_threads_worker_for_webhook_deliveries() -> None:
    settings = load_settings()
    argv = process_table(settings)["worker-webhooks"]

    assert option(argv, "-P") == "threads" and option(argv, "-Q") == f"{settings.key_prefix}.webhooks"
    assert option(argv, "--loglevel") == "WARNING"


def test_beat_runs_at_warning_so_its_one_line_a_second_does_not_bury_the_workers() -> None:
    argv = process_table(load_settings())["beat"]

    assert argv[argv.index("-A") + 2] == "beat"
    assert option(argv, "--loglevel") == "WARNING"


def test_a_worker_started_by_hand_has_a_node_name_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """`switchyard worker` execs celery in its own process: the name carries role and pid."""
    started: list[list[str]] = []
    monkeypatch.setenv("SWITCHYARD_CONFIG_FILE", str(TEST_CONFIG))
    monkeypatch.setattr(os, "execv", lambda path, argv: started.append(argv))

    result = CliRunner().invoke(app, ["worker", "--tier", "small"])

    assert result.exit_code == 0, result.output
    [argv] = started
    assert option(argv, "-n") == f"small-cli-{os.getpid()}@%h"
    up_worker = process_table(load_settings(config_file=TEST_CONFIG))["worker-small"]
    assert option(up_worker, "-n") == "small@%h"
