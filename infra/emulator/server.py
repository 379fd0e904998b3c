"""Run the provider emulator under uvicorn (`switchyard emulator`, `python -m infra.emulator`)."""

import uvicorn

from infra.emulator.app import create_app
from infra.emulator.provider import EmulatorConfig


def serve(
    host: str = "127.0.0.1",
    port: int = 8090,
    rpm: int | None = None,
    tpm: int | None = None,
    latency_ms: float = 0.0,
    fail_rate: float = 0.0,
    window_s: float = 60.0,
    seed: int = 0,
    batch_delay_s: float = 0.5,
    api_key: str | None = None,
) -> None:
    """Serve an emulator until interrupted."""
    config = EmulatorConfig(
        rpm=rpm,
        tpm=tpm,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        seed=seed,
        window_s=window_s,
        batch_delay_s=batch_delay_s,
        api_key=api_key,
    )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="auto",
    )
