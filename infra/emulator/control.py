"""The /emulator control API: scripted faults, counters, reset and run-time config.

Tests of other packages script provider behaviour through these routes, so their shapes are
a contract: change them only together with those tests.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, field_validator

from infra.emulator.faults import SCRIPTABLE, WILDCARD, Fault, Kind
from infra.emulator.provider import Emulator, EmulatorConfig, current_emulator

router = APIRouter(prefix="/emulator", tags=["emulator"])
EmulatorDep = Annotated[Emulator, Depends(current_emulator)]
CLEARED_VALUES: dict[str, float] = {"latency_ms": 0.0, "fail_rate": 0.0, "window_s": 60.0}


class FaultScript(BaseModel):
    """Faults to answer for a model ("*" for all), and optionally its extra latency."""

    model: str = WILDCARD
    responses: list[int | Literal["timeout", "malformed"]] = []
    mode: Literal["sequence", "always"] = "sequence"
    retry_after_s: float = Field(1.0, ge=0)
    hang_s: float = Field(30.0, ge=0)
    latency_ms: float | None = Field(None, ge=0)

    @field_validator("responses")
    @classmethod
    def known_statuses(cls, responses: list[Kind]) -> list[Kind]:
        """Refuse statuses the emulator cannot script."""
        unknown = [r for r in responses if r not in SCRIPTABLE]
        if unknown:
            raise ValueError(f"cannot script {unknown}; use one of {sorted(map(str, SCRIPTABLE))}")
        return responses


class ConfigUpdate(BaseModel):
    """Run-time changes to limits, latency and random faults; null clears a value."""

    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    latency_ms: float | None = Field(None, ge=0)
    fail_rate: float | None = Field(None, ge=0, le=1)
    window_s: float | None = Field(None, gt=0)


def describe_config(config: EmulatorConfig) -> dict[str, Any]:
    """Return the config as JSON-ready data."""
    return dict(vars(config))


@router.post("/faults")
async def script_faults(script: FaultScript, emulator: EmulatorDep) -> dict[str, Any]:
    """Queue or fix fault responses for a model, and set its extra latency."""
    faults = [Fault(kind, script.retry_after_s, script.hang_s) for kind in script.responses]
    emulator.plan.script(script.model, faults, script.mode)
    if script.latency_ms is not None:
        emulator.plan.latency_ms[script.model] = script.latency_ms
    return emulator.plan.describe()


@router.get("/faults")
async def show_faults(emulator: EmulatorDep) -> dict[str, Any]:
    """Show the scripted faults and per-model latency."""
    return emulator.plan.describe()


@router.delete("/faults")
async def clear_faults(emulator: EmulatorDep) -> dict[str, Any]:
    """Clear every scripted fault and per-model latency."""
    emulator.plan.clear()
    return emulator.plan.describe()


@router.get("/stats")
async def show_stats(emulator: EmulatorDep) -> dict[str, Any]:
    """Return the request, status, model and token counters."""
    stats = emulator.stats
    return {
        "requests": stats.requests,
        "by_status": dict(stats.by_status),
        "by_model": dict(stats.by_model),
        "tokens": stats.tokens,
    }


@router.post("/reset")
async def reset(emulator: EmulatorDep) -> dict[str, Any]:
    """Reset counters, rate-limit windows and faults."""
    emulator.reset()
    return {"reset": True}


@router.get("/config")
async def show_config(emulator: EmulatorDep) -> dict[str, Any]:
    """Return the current limits, latency and fault rate."""
    return describe_config(emulator.config)


@router.post("/config")
async def update_config(update: ConfigUpdate, emulator: EmulatorDep) -> dict[str, Any]:
    """Change limits, latency, fault rate or window length at run time."""
    for name in update.model_fields_set:
        value = getattr(update, name)
        setattr(emulator.config, name, CLEARED_VALUES.get(name) if value is None else value)
    emulator.reconfigure()
    return describe_config(emulator.config)
