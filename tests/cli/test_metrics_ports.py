"""`switchyard up`'s process table gives each worker node its own metrics port when they are on."""

from __future__ import annotations

from tests_support import TEST_CONFIG

from cli.processes import process_table
from schemas.settings import load_settings
from workers.metrics.node import requested_port


def test_each_worker_node_gets_the_next_port_and_nothing_else_gets_one() -> None:
    table = process_table(load_settings(config_file=TEST_CONFIG, metrics={"worker_port": 9101}))
    workers = [name for name in table if name.startswith("worker-")]
    ports = [requested_port(table[name], 0) for name in workers]
    assert len(workers) >= 2 and ports == list(range(9101, 9101 + len(workers)))
    for name, argv in table.items():
        assert ("--metrics-port" in argv) == name.startswith("worker-"), name


def test_with_metrics_off_no_command_line_changes() -> None:
    table = process_table(load_settings(config_file=TEST_CONFIG))
    assert not any("--metrics-port" in argv for argv in table.values())
