"""The example jobs the README uses are valid against the default configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.job_limits import check_job
from schemas.jobs import JobCreate
from schemas.settings import DEFAULT_CONFIG_FILE, load_settings

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("job-*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_job_passes_every_api_check_on_the_default_config(path: Path) -> None:
    body = JobCreate.model_validate(json.loads(path.read_text()))
    check_job(body, load_settings(config_file=DEFAULT_CONFIG_FILE))


def test_there_are_examples_for_the_local_and_emulator_tiers() -> None:
    assert {path.name for path in EXAMPLES} >= {"job-local.json", "job-small.json"}
