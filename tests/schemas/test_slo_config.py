"""``[tiers.X.slo]`` (schemas/slo.py): what loads, and what is refused with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests_support import make_test_settings

from schemas.settings import load_settings
from schemas.slo import SloObjectives

CONFIG = Path(__file__).resolve().parents[2] / "infra" / "switchyard.toml"


def test_the_example_config_sets_objectives_on_the_small_tier() -> None:
    settings = load_settings(config_file=CONFIG)
    assert settings.tiers["small"].slo == SloObjectives(
        latency_p95_s=2.5, error_rate=0.01, window_s=2_592_000
    )
    assert settings.tiers["large"].slo is None


def test_one_objective_is_enough_and_the_window_defaults_to_30_days() -> None:
    assert SloObjectives.model_validate({"error_rate": 0.001}).window_s == 30 * 86_400
    assert SloObjectives.model_validate({"latency_p95_s": 1}).error_rate is None


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ({}, "sets latency_p95_s, error_rate or both"),
        ({"window_s": 86_400}, "sets latency_p95_s, error_rate or both"),
        ({"error_rate": 1.0}, "less than 1"),
        ({"error_rate": 0}, "greater than 0"),
        ({"latency_p95_s": -1}, "greater than 0"),
        ({"error_rate": 0.01, "window_s": 3600}, "greater than or equal to 86400"),
        ({"error_rate": 0.01, "window_s": 91 * 86_400}, "less than or equal to 7776000"),
        ({"error_rate": 0.01, "latency_p99_s": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_objectives_are_refused_at_load(tmp_path: Path, slo: dict[str, Any], message: str) -> None:
    tiers = {"small": {"models": ["emu-a"], "slo": slo}}
    with pytest.raises(ValidationError, match=message):
        make_test_settings(tmp_path, "redis://127.0.0.1:6379/7", tiers=tiers)
