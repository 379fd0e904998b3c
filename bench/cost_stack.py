"""The Switchyard deployment of ``bench/cost.py``: emulator, API, worker processes and beat.

The config is ``bench/cost.toml`` (large and small models, routing rules, a provider with the
Batch API). Every process runs as in production, on one SQLite file (or the PostgreSQL
database given) and one Redis db, with the provider batch lane's timers compressed so that a
day's wait is a few seconds: a batch is sent 2 s after its first job joined, beat polls every
0.5 s, and the emulator completes a batch 0.2 s after it started.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import bench_paths
import httpx
from redis import Redis
from sqlmodel import Session, select
from switchyard_side import prepare

from api.keys import create_key, create_tenant
from infra.launch import ProcessGroup, api_argv, celery_argv, emulator_argv, free_port, wait_http, worker_argv
from schemas.settings import Settings, load_settings
from schemas.tables import Tenant
from workers.db import make_engine
from workers.keys import RedisKeys, tier_queues

CONFIG = bench_paths.BENCH_DIR / "cost.toml"
TIERS = ("large", "small", "budget")
UNLIMITED = 1_000_000_000  # a bulk tenant's submissions per minute and running jobs
# SWITCHYARD_<NAME> of every process: the lane's day compressed to seconds, quick recovery.
TIMING = {
    "PROVIDER_BATCHES__POLL_INTERVAL_S": "0.5",
    "PROVIDER_BATCHES__MAX_WAIT_S": "2",
    "PROVIDER_BATCHES__MAX_LINES": "500",
    "PROVIDER_BATCHES__RESEND_AFTER_S": "30",
    "RECONCILE_INTERVAL_S": "2",
    "RATE_LIMITS__TENANT_RPM": str(UNLIMITED),
}


@dataclass
class CostStack:
    """The running deployment: its URLs, settings and the benchmark tenant's key."""

    settings: Settings
    api_url: str
    emulator_url: str
    key: str
    processes: ProcessGroup

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for the API with ``key`` (the benchmark tenant's by default)."""
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=60)

    def emulator_calls(self, model: str) -> int:
        """Live chat calls the emulator has answered for ``model`` (batch lines not counted)."""
        stats = httpx.get(f"{self.emulator_url}/emulator/stats", timeout=10).json()
        return int(stats["by_model"].get(model, 0))

    def new_tenant(self, name: str) -> tuple[str, str]:
        """A new bulk tenant with a submit-and-read key: (tenant id, key)."""
        engine = make_engine(self.settings)
        try:
            with Session(engine) as session:
                tenant = create_tenant(
                    session, f"{name}-{uuid.uuid4().hex[:6]}", rpm_limit=UNLIMITED, max_running_jobs=UNLIMITED
                )
                session.flush()
                key = create_key(session, tenant.id, {"submit", "read"})
                session.commit()
                return tenant.id, key
        finally:
            engine.dispose()

    def tenant_id(self) -> str:
        """The benchmark tenant's id (``switchyard_side.tenant_key`` named it after the key prefix)."""
        engine = make_engine(self.settings)
        try:
            with Session(engine) as session:
                name = f"bench-{self.settings.key_prefix}"
                return str(session.exec(select(Tenant.id).where(Tenant.name == name)).one())
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.processes.stop_all()


def forget_keys(redis_url: str, prefix: str) -> None:
    """Delete the run's Redis keys (queues, caches, limits: each name carries the prefix)."""
    redis = Redis.from_url(redis_url)
    for name in redis.scan_iter(f"*{prefix}*", count=10_000):
        redis.unlink(name)


def start(var_dir: Path, redis_url: str, database_url: str, workers: int) -> CostStack:
    """Migrate, make the benchmark tenant and start every process; returns once the API answers."""
    api_port, emulator_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    deployment = prepare(var_dir, redis_url, database_url, CONFIG.read_text(), emulator_url)
    env = {**deployment.env, **{f"SWITCHYARD_{name}": value for name, value in TIMING.items()}}
    settings = load_settings(
        config_file=var_dir / "switchyard-bench.toml",
        var_dir=var_dir,
        redis_url=redis_url,
        database_url=database_url,
        key_prefix=deployment.key_prefix,
    )
    processes = ProcessGroup(var_dir, bench_paths.process_env())
    processes.start("emulator", [*emulator_argv(emulator_port), "--batch-delay-s", "0.2"], env=env)
    processes.start("api", api_argv(api_port, log_level="warning"), env=env)
    queues = [queue for tier in TIERS for queue in tier_queues(tier)]
    queues.append(RedisKeys(deployment.key_prefix).maintenance_queue)
    for index in range(workers):  # single-process workers: the budget scenario wants 4 processes
        name = f"worker-{index}"
        processes.start(name, worker_argv(queues, 1, name, log_level="WARNING"), env=env)
    beat = celery_argv("beat", "-s", str(var_dir / "beat-schedule"), log_level="WARNING")
    processes.start("beat", beat, env=env)
    stack = CostStack(settings, f"http://127.0.0.1:{api_port}", emulator_url, deployment.key, processes)
    try:
        wait_http(f"{emulator_url}/emulator/stats", alive=processes.check_alive)
        wait_http(f"{stack.api_url}/readyz", alive=processes.check_alive)
    except BaseException:
        processes.stop_all()
        raise
    return stack
