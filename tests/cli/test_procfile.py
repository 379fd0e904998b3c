"""The committed Procfile is `switchyard procfile` for the default config: the Procfile runs what
`switchyard up` runs, precompute queues included."""

from __future__ import annotations

import os
import sys

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.procfile import command_line, render_procfile
from schemas.settings import PROJECT_ROOT, load_settings
from workers.keys import tier_queues

runner = CliRunner()


@pytest.fixture
def default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SWITCHYARD_* variable of the test run changes the default config."""
    for name in list(os.environ):
        if name.startswith("SWITCHYARD_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)


def procfile_entries(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split(": ", 1) for line in lines)


@pytest.mark.usefixtures("default_environment")
def test_the_committed_procfile_is_the_generated_one() -> None:
    committed = (PROJECT_ROOT / "Procfile").read_text(encoding="utf-8")

    assert committed == render_procfile(load_settings()), "run: switchyard procfile > Procfile"


@pytest.mark.usefixtures("default_environment")
def test_switchyard_procfile_prints_it() -> None:
    result = runner.invoke(app, ["procfile"])

    assert result.exit_code == 0, result.output
    assert result.output == render_procfile(load_settings())


@pytest.mark.usefixtures("default_environment")
def test_every_tier_worker_of_the_procfile_consumes_its_precompute_queue() -> None:
    settings = load_settings()
    entries = procfile_entries(render_procfile(settings))

    for tier in settings.tiers:
        argv = entries[f"worker-{tier}"].split()
        queues = argv[argv.index("-Q") + 1].split(",")
        assert set(tier_queues(tier)) <= set(queues) and f"tier.{tier}.precompute" in queues


def test_a_command_line_names_console_scripts_and_paths_relative_to_the_project() -> None:
    schedule = str(PROJECT_ROOT / "var" / "celerybeat-schedule")

    assert command_line([sys.executable, "-m", "celery", "beat", "-s", schedule]) == (
        "celery beat -s var/celerybeat-schedule"
    )
    assert command_line([sys.executable, "-m", "infra.emulator", "--port", "8090"]) == (
        "python -m infra.emulator --port 8090"
    )
    assert command_line(["celery", "-n", "small@%h", "-Q", "a b"]) == "celery -n small@%h -Q 'a b'"
