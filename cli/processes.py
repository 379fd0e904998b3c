"""The processes ``switchyard up`` runs, derived from config: one worker per tier."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

from schemas.settings import PRIORITIES, Settings, queue_name
from workers.keys import RedisKeys


def worker_argv(settings: Settings, tier: str, concurrency: int | None = None) -> list[str]:
    """The celery command line of a worker for one tier (it also serves housekeeping)."""
    queues = [queue_name(tier, priority) for priority in PRIORITIES]
    queues.append(RedisKeys(settings.key_prefix).maintenance_queue)
    is_local = any(
        settings.providers[settings.models[alias].provider].kind == "local"
        for alias in settings.tiers[tier].models
    )
    workers = concurrency or (1 if is_local else 4)
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "worker",
        "-Q",
        ",".join(queues),
        "-c",
        str(workers),
        "-n",
        f"{tier}@%h",
        "--loglevel",
        "INFO",
    ]


def process_table(settings: Settings) -> dict[str, list[str]]:
    """Name -> command line of every process of the embedded deployment."""
    api = urlsplit(settings.api_url)
    table = {
        "web": [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.main:create_app",
            "--host",
            api.hostname or "127.0.0.1",
            "--port",
            str(api.port or 8000),
        ],
        "beat": [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "beat",
            "-s",
            str(settings.var_dir / "celerybeat-schedule"),
            "--loglevel",
            "INFO",
        ],
        "flower": [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "flower",
            "--address=127.0.0.1",
            "--port=5555",
        ],
    }
    for tier in settings.tiers:
        table[f"worker-{tier}"] = worker_argv(settings, tier)
    if settings.emulator_port:
        table["emulator"] = [sys.executable, "-m", "infra.emulator", "--port", str(settings.emulator_port)]
    return table
