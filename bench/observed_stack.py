"""The two deployments of ``bench/observability.py``: one with metrics and tracing on, one with both off.

Both are the overhead benchmark's Switchyard side (``bench/switchyard_side.py``: the API under
uvicorn, one prefork worker node, a tier whose only model is on the provider emulator), started
side by side on one machine, one Redis db and one emulator (a small fixed latency), each with its
own PostgreSQL database, key prefix and tier (Celery's tier queues are not prefixed, so two
deployments on one Redis db need two tier names; the tiers are configured alike).

- **on**: the API serves ``/metrics``; the worker node serves its own metrics port in
  prometheus-client's multiprocess mode; every process exports its spans over OTLP/HTTP
  (``OTEL_*``) to ``bench/otlp_sink.py``, which accepts and discards them.
- **off**: metrics disabled and no ``OTEL_*`` variable at all.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import bench_paths
import httpx
from prometheus_client.parser import text_string_to_metric_families
from switchyard_side import BENCH_CONFIG, MODEL_ALIAS, SwitchyardSide, create_database, drop_database, prepare

from infra.launch import ProcessGroup, api_argv, emulator_argv, free_port, wait_http, worker_argv
from workers.keys import RedisKeys, tier_queues

ENDED = "switchyard_jobs_ended_total"
SHARED = frozenset({"benchmark client", "emulator", "otlp sink", "Redis server", "PostgreSQL server"})


def quiet_env() -> dict[str, str]:
    """This process's environment for the stack, without the caller's ``OTEL_*`` or metrics variables."""
    inherited = bench_paths.process_env().items()
    return {name: value for name, value in inherited if not name.startswith(("OTEL_", "PROMETHEUS_"))}


def tracing_env(sink_url: str, service: str, ratio: float = 1.0) -> dict[str, str]:
    """The standard variables that turn tracing on, exporting over OTLP/HTTP to the sink; below a
    ``ratio`` of 1, the SDK's own sampler keeps that share of the jobs' traces."""
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": service,
    }
    if ratio < 1:
        env.update({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": str(ratio)})
    return env


def metrics_env(enabled: bool, port: int) -> dict[str, str]:
    """The worker node's metrics: its own port (the node makes its own multiprocess directory,
    workers/metrics/node.py), or port 0 (off).

    The API's ``/metrics`` has no switch; with nobody scraping it, it costs nothing but the
    in-process counters, which the off side's processes keep too.
    """
    return {"SWITCHYARD_METRICS__WORKER_PORT": str(port if enabled else 0)}


@dataclass(frozen=True)
class Addresses:
    """Where a deployment finds its Redis, database, provider emulator and trace sink."""

    redis_url: str
    database_url: str
    emulator_url: str
    sink_url: str


@dataclass(frozen=True)
class Shape:
    """What both deployments share: the emulator's latency, the worker node's pool size, and the
    share of jobs the on side traces (1: every job)."""

    latency_ms: float
    concurrency: int
    trace_ratio: float = 1.0


class ObservedSide(SwitchyardSide):
    """One deployment (``label`` on or off) on the shared emulator; measured like the overhead side."""

    def __init__(self, procs: ProcessGroup, label: str, var_dir: Path, at: Addresses, shape: Shape) -> None:
        """Migrate, make a tenant key, start the API and the worker node; returns once both are up."""
        self.name, self.tier, self.next_n = label, f"obs_{label}", 0
        var_dir.mkdir(parents=True, exist_ok=True)
        config = BENCH_CONFIG.format(emulator_url=at.emulator_url, alias=MODEL_ALIAS, tier=self.tier)
        deployment = prepare(var_dir, at.redis_url, at.database_url, config, at.emulator_url)
        self.key, self.key_prefix = deployment.key, deployment.key_prefix
        api_port, worker_port = free_port(), free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.observed = label == "on"
        env = {**deployment.env, **metrics_env(self.observed, worker_port)}
        self.metrics_urls = [f"{self.api_url}/metrics", f"http://127.0.0.1:{worker_port}/metrics"]
        if self.observed:
            env.update(tracing_env(at.sink_url, f"switchyard-bench-{label}", shape.trace_ratio))
        queues = [*tier_queues(self.tier), RedisKeys(self.key_prefix).maintenance_queue]
        procs.start(f"api {label}", api_argv(api_port, log_level="warning"), env=env)
        worker = worker_argv(queues, shape.concurrency, f"obs-{label}", log_level="WARNING")
        procs.start(f"worker {label}", worker, env=env)
        wait_http(f"{self.api_url}/readyz", alive=procs.check_alive)
        if self.observed:
            for url in self.metrics_urls:
                wait_http(url, alive=procs.check_alive)

    @property
    def processes(self) -> frozenset[str]:
        """Its own processes and the shared ones, whose CPU its rounds are charged with."""
        return SHARED | {f"api {self.name}", f"worker {self.name}"}

    def jobs_ended(self) -> int:
        """``switchyard_jobs_ended_total`` of its tier, summed over its processes' scrapes and labels."""
        return int(sum(scrape(url, ENDED, {"tier": self.tier}) for url in self.metrics_urls))


def scrape(url: str, sample_name: str, labels: dict[str, str]) -> float:
    """The sum of one metric's samples whose labels include ``labels``, read from ``url``."""
    answer = httpx.get(url, timeout=30)
    answer.raise_for_status()
    return sum(
        sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == sample_name and labels.items() <= sample.labels.items()
    )


@dataclass
class Stack:
    """Both deployments, the emulator and the OTLP sink, in one process group."""

    procs: ProcessGroup
    sides: dict[str, ObservedSide] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    sink_url: str = ""

    def spans_received(self) -> dict[str, int]:
        """The sink's counts: exports, bytes and spans."""
        return dict(httpx.get(f"{self.sink_url}/stats", timeout=10).json())


def start(work_dir: Path, redis_url: str, admin_url: str, shape: Shape) -> Stack:
    """Start the emulator, the sink and both deployments (each on a fresh database)."""
    stack = Stack(ProcessGroup(work_dir, quiet_env()))
    procs = stack.procs
    try:
        emulator_port, sink_port = free_port(), free_port()
        emulator_url, stack.sink_url = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{sink_port}"
        procs.start("emulator", [*emulator_argv(emulator_port), "--latency-ms", str(shape.latency_ms)])
        sink = [sys.executable, str(bench_paths.BENCH_DIR / "otlp_sink.py"), "--port", str(sink_port)]
        procs.start("otlp sink", sink)
        wait_http(f"{emulator_url}/emulator/stats", alive=procs.check_alive)
        wait_http(f"{stack.sink_url}/stats", alive=procs.check_alive)
        for label in ("on", "off"):
            database_url = create_database(admin_url) if admin_url else ""
            if database_url:
                stack.databases.append(database_url)
            at = Addresses(redis_url, database_url, emulator_url, stack.sink_url)
            stack.sides[label] = ObservedSide(procs, label, work_dir / label, at, shape)
    except BaseException:  # the caller never gets the stack: stop and drop what was made
        procs.stop_all()
        for url in stack.databases:
            drop_database(admin_url, url)
        raise
    return stack
