"""The API alone under concurrent submissions: CPU per POST with a small thread lane against anyio's 40.

Only the API process runs (no worker, no provider), so its CPU per ``POST /v1/jobs`` is what
a submission costs it, with far less noise than the full ``bench/overhead.py``. Each round
starts a fresh API with ``SWITCHYARD_API_JOB_THREADS`` set to the baseline (40, anyio's default
pool size) and then to the lane size, and drives it with the same 16 client threads for the
same time. The result is the median over the rounds and the ratio lane/baseline.

    .venv/bin/python bench/api_lane.py            # 5 rounds of 8 s per side, lane 4
    .venv/bin/python bench/api_lane.py --lane 2 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import bench_paths
from cpu_usage import cpu_delta, cpu_snapshot
from lean_http import LeanClient
from redis import Redis
from switchyard_side import BENCH_CONFIG, MODEL_ALIAS, TIER, Deployment, job_body, prepare

from infra.launch import ProcessGroup, api_argv, free_port, wait_http

BASELINE_THREADS = 40  # anyio's default thread limiter, which FastAPI's sync endpoints share
WARMUP_PER_CLIENT = 20
NO_PROVIDER = "http://127.0.0.1:9"  # nothing is called: no worker runs


def measure(
    deployment: Deployment, var_dir: Path, threads: int, clients: int, seconds: float
) -> tuple[float, float]:
    """One fresh API with ``threads`` lane threads: (CPU ms per POST, POSTs per second)."""
    port = free_port()
    procs = ProcessGroup(var_dir, bench_paths.process_env())
    env = {**deployment.env, "SWITCHYARD_API_JOB_THREADS": str(threads)}
    procs.start("api", api_argv(port, log_level="warning"), env=env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_http(f"{base_url}/healthz", alive=procs.check_alive)
        headers = {"Authorization": f"Bearer {deployment.key}"}
        posts = [0] * clients
        warm = threading.Barrier(clients + 1)
        stop_at: list[float] = []

        def client(index: int) -> None:
            with LeanClient(base_url, headers) as http:
                for n in range(WARMUP_PER_CLIENT):
                    http.post("/v1/jobs", json=job_body(n))
                warm.wait()
                while time.monotonic() < stop_at[0]:
                    response = http.post("/v1/jobs", json=job_body(index))
                    if response.status_code != 202:
                        raise RuntimeError(f"submit answered {response.status_code}: {response.text[:200]}")
                    posts[index] += 1

        workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for worker in workers:
            worker.start()
        # Every client is warm and waits at the barrier: snapshot, set the end, let them go.
        while warm.n_waiting < clients:
            time.sleep(0.01)
        before, started = cpu_snapshot(procs), time.monotonic()
        stop_at.append(started + seconds)
        warm.wait()
        for worker in workers:
            worker.join()
        used = cpu_delta(before, cpu_snapshot(procs))["api"]
        elapsed = time.monotonic() - started
        total = sum(posts)
        return 1000 * used / total, total / elapsed
    finally:
        procs.stop_all()


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--lane", type=int, default=4, help="lane threads to compare with the baseline (4)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each measures both sides (5)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per side and round (8)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads (16)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11", help="flushed at start and end")
    args = parser.parse_args()

    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    results: dict[int, list[tuple[float, float]]] = {BASELINE_THREADS: [], args.lane: []}
    try:
        with tempfile.TemporaryDirectory(prefix="switchyard-api-lane-") as tmp:
            var_dir = Path(tmp)
            config = BENCH_CONFIG.format(emulator_url=NO_PROVIDER, alias=MODEL_ALIAS, tier=TIER)
            deployment = prepare(var_dir, args.redis_url, "", config, NO_PROVIDER)
            for round_no in range(1, args.rounds + 1):
                for threads in (BASELINE_THREADS, args.lane):
                    cpu_ms, rate = measure(deployment, var_dir, threads, args.clients, args.seconds)
                    results[threads].append((cpu_ms, rate))
                    print(f"round {round_no} threads={threads}: {cpu_ms:.3f} ms CPU/POST, {rate:.0f} POST/s")
    finally:
        redis.flushdb()
        redis.close()

    base_cpu = statistics.median(cpu for cpu, _ in results[BASELINE_THREADS])
    base_rate = statistics.median(rate for _, rate in results[BASELINE_THREADS])
    lane_cpu = statistics.median(cpu for cpu, _ in results[args.lane])
    lane_rate = statistics.median(rate for _, rate in results[args.lane])
    print(
        f"baseline_threads={BASELINE_THREADS} lane_threads={args.lane} "
        f"baseline_cpu_ms_per_post={base_cpu:.3f} lane_cpu_ms_per_post={lane_cpu:.3f} "
        f"cpu_ratio={lane_cpu / base_cpu:.3f} baseline_posts_s={base_rate:.0f} lane_posts_s={lane_rate:.0f} "
        f"rate_ratio={lane_rate / base_rate:.3f} rounds={args.rounds}"
    )


if __name__ == "__main__":
    main()
