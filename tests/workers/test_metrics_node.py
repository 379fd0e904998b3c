"""A worker node's metrics: the port it serves on, and exact counts summed over forked pool
processes and threads (prometheus-client's multiprocess mode, as a prefork or threads pool)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.launch import ROOT, free_port
from workers.metrics.node import ENV, requested_port

# Run in a fresh interpreter, as a worker node: prometheus_client is imported first (the celery
# command's Flower plugin does that), then the node prepares its directory, forks pool
# processes that count, adds threads that count, and serves; the scrape is printed as JSON.
NODE_SCRIPT = """
import json, os, sys, threading, urllib.request
import prometheus_client  # imported before the node is prepared, as under `celery worker`
from workers.metrics.node import prepare_node
port = int(sys.argv[1])
assert prepare_node(["celery", "worker", "--metrics-port", str(port)], 0) == port
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families
from workers.metrics import definitions as m
from workers.metrics.exposition import serve_node

def count(times):
    for _ in range(times):
        m.jobs_ended.labels("small", "live", "succeeded", "").inc()
        m.tokens.labels("small", "emu-a", "emulator", "prompt").inc(3)
        m.job_duration.labels("small", "live", "succeeded").observe(0.2)

children = []
for _ in range(3):  # a prefork pool: each child counts, then exits
    pid = os.fork()
    if pid == 0:
        count(100)
        multiprocess.mark_process_dead(os.getpid())
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
threads = [threading.Thread(target=count, args=(50,)) for _ in range(4)]  # a threads pool
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
serve_node(port, "127.0.0.1")
text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
families = text_string_to_metric_families(text)
samples = {s.name: s.value for f in families for s in f.samples if "le" not in s.labels}
print(json.dumps({"samples": samples, "dir": os.environ["PROMETHEUS_MULTIPROC_DIR"]}))
"""


@pytest.mark.parametrize(
    ("argv", "default", "port"),
    [
        (["celery", "-A", "workers.app", "worker", "--metrics-port", "9105"], 9100, 9105),
        (["celery", "-A", "workers.app", "worker", "--metrics-port=9106"], 0, 9106),
        (["celery", "-A", "workers.app", "worker", "-n", "small@%h"], 9100, 9100),
        (["celery", "-A", "workers.app", "worker"], 0, 0),
        (["celery", "-A", "workers.app", "beat", "--metrics-port", "9105"], 9100, 0),
        (["celery", "-A", "workers.app", "flower"], 9100, 0),
    ],
)
def test_only_a_worker_node_serves_and_its_own_port_wins(argv: list[str], default: int, port: int) -> None:
    assert requested_port(argv, default) == port


def test_counts_of_forked_pool_processes_and_threads_add_up_exactly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    done = subprocess.run(
        [sys.executable, "-c", NODE_SCRIPT, str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    scraped = json.loads(done.stdout.strip().splitlines()[-1])
    samples = scraped["samples"]
    jobs = 3 * 100 + 4 * 50
    assert samples["switchyard_jobs_ended_total"] == jobs
    assert samples["switchyard_tokens_total"] == 3 * jobs
    assert samples["switchyard_job_duration_seconds_count"] == jobs
    assert not Path(scraped["dir"]).exists()  # the node's own directory goes with it


def test_a_directory_given_by_the_operator_is_emptied_at_start(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    script = (
        "from workers.metrics.node import prepare_node;"
        "prepare_node(['celery', 'worker', '--metrics-port', '9999'], 0)"
    )
    env = {**os.environ, ENV: str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=60)
    assert list(tmp_path.iterdir()) == []
