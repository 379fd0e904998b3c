"""The routing configuration (schemas/catalog.py): what loads, and what is refused with a clear message."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests_support import make_test_settings

from schemas.catalog import RouteConditions
from schemas.settings import DEFAULT_CONFIG_FILE, Settings, load_settings

CHAT = {"big": {"models": ["emu-b"]}, "little": {"models": ["emu-a"]}}


def settings_with(
    tmp_path: Path, tiers: dict[str, Any], auto_tiers: dict[str, Any] | None = None
) -> Settings:
    return make_test_settings(tmp_path, "redis://127.0.0.1:6379/9", tiers=tiers, auto_tiers=auto_tiers or {})


def rule(tier: str, name: str = "r", **when: Any) -> dict[str, Any]:
    return {"name": name, "tier": tier, "when": when}


def test_the_documented_format_loads_from_toml(tmp_path: Path) -> None:
    config = tmp_path / "routing.toml"
    config.write_text(
        (Path(__file__).parents[1] / "switchyard-test.toml").read_text()
        + """
[tiers.large]
models = ["emu-b"]
[[tiers.large.rules]]
name = "short-to-small"
tier = "small"
when = { max_prompt_tokens = 300, json_schema = false }
[[tiers.large.rules]]
name = "easy-tasks"
tier = "small"
when = { metadata = { task = ["classify", "extract"] } }

[tiers.small.accepts]
max_prompt_tokens = 1000
json_schema = false

[auto_tiers.auto]
tiers = ["small", "large"]
"""
    )
    settings = load_settings(config_file=config, var_dir=tmp_path)
    rules = settings.tiers["large"].rules
    assert [(r.name, r.tier) for r in rules] == [("short-to-small", "small"), ("easy-tasks", "small")]
    assert rules[0].when.max_prompt_tokens == 300 and rules[0].when.json_schema is False
    assert rules[1].when.metadata == {"task": ["classify", "extract"]}
    assert settings.tiers["small"].accepts == RouteConditions.model_validate(
        {"max_prompt_tokens": 1000, "json_schema": False}
    )
    assert settings.auto_tiers["auto"].tiers == ["small", "large"]
    assert "auto" not in settings.tiers  # an auto tier is never a queue of its own


def test_the_example_config_documents_rules_and_an_auto_tier(tmp_path: Path) -> None:
    settings = load_settings(config_file=DEFAULT_CONFIG_FILE, var_dir=tmp_path)
    assert settings.tiers["large"].rules and settings.auto_tiers
    raw = tomllib.loads(DEFAULT_CONFIG_FILE.read_text())
    assert {"local", "embed", "small"} <= set(raw["tiers"])  # the existing tiers stay


@pytest.mark.parametrize(
    ("tiers", "auto_tiers", "message"),
    [
        ({"big": {"models": ["emu-b"], "rules": [rule("nowhere")]}}, {}, "names unknown tier 'nowhere'"),
        ({"big": {"models": ["emu-b"], "rules": [rule("big")]}}, {}, "routes to its own tier"),
        ({"big": {"models": ["emu-b"], "rules": [rule("embed")]}}, {}, "of kind 'embedding', not 'chat'"),
        (
            {"big": {"models": ["emu-b"], "rules": [rule("pick")]}},
            {"pick": {"tiers": ["little"]}},
            "names auto tier",
        ),
        (
            {"big": {"models": ["emu-b"], "rules": [rule("little"), rule("little")]}},
            {},
            "rule names must be unique",
        ),
        ({"big": {"models": ["emu-b"], "rules": [rule("little", name="auto")]}}, {}, "not 'auto'"),
        ({}, {"pick": {"tiers": ["nowhere"]}}, "auto tier 'pick' names unknown tier 'nowhere'"),
        ({}, {"pick": {"tiers": ["little", "embed"]}}, "of kind 'embedding', not 'chat'"),
        ({}, {"little": {"tiers": ["big"]}}, "auto tier 'little' has the name of a tier"),
        ({}, {"pick": {"tiers": ["big", "big"]}}, "lists a candidate twice"),
        ({}, {"pick": {"tiers": []}}, "at least 1 item"),
        ({"big": {"models": ["emu-b"], "rules": [rule("little", bogus=1)]}}, {}, "bogus"),
        (
            {
                "big": {
                    "models": ["emu-b"],
                    "rules": [rule("little", min_prompt_tokens=9, max_prompt_tokens=3)],
                }
            },
            {},
            "above",
        ),
        ({"big": {"models": ["emu-b"], "accepts": {"metadata": {"task": {"a": 1}}}}}, {}, "metadata"),
    ],
)
def test_routing_that_cannot_work_is_refused_at_load(
    tmp_path: Path, tiers: dict[str, Any], auto_tiers: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        settings_with(tmp_path, {**CHAT, **tiers}, auto_tiers)


def test_rules_between_tiers_of_one_kind_load(tmp_path: Path) -> None:
    tiers = {**CHAT, "big": {"models": ["emu-b"], "rules": [rule("little", max_prompt_tokens=10)]}}
    settings = settings_with(tmp_path, tiers, {"pick": {"tiers": ["little", "big"]}})
    assert settings.tiers["big"].rules[0].tier == "little"
