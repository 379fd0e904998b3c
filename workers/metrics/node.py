"""A worker node's multiprocess directory, prepared before ``prometheus_client`` is imported.

prometheus-client picks its value store when it is first imported: with
``PROMETHEUS_MULTIPROC_DIR`` set, every process writes its counters to its own file in that
directory, and a scrape sums the files. A Celery prefork pool forks its children from the
node's main process, so the variable must be set there, before the fork and before anything
imports the library: ``workers/app.py`` calls :func:`prepare_node` first thing. A threads pool
is one process and works the same way. Each node gets a directory of its own, empty at start,
so two nodes on one machine never sum each other's files and a restart starts from zero.

This module imports only the standard library, for that reason. The ``celery`` command may
have imported the library already (Flower's command plugin does): then its value store is
chosen again here, before any of our metrics holds a value (their labelled values are made
on first use).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
PORT_OPTION = "--metrics-port"

# The port this process's node serves its metrics on (0: off); set by prepare_node.
node_port = 0


def requested_port(argv: Sequence[str], default_port: int) -> int:
    """The metrics port of a ``celery worker`` command line: ``--metrics-port`` or the default;
    0 for any other command (beat, flower) or when metrics are off."""
    if "worker" not in argv[1:]:
        return 0
    for index, arg in enumerate(argv):
        if arg == PORT_OPTION and index + 1 < len(argv):
            return int(argv[index + 1])
        if arg.startswith(PORT_OPTION + "="):
            return int(arg.split("=", 1)[1])
    return default_port


def prepare_node(argv: Sequence[str], default_port: int) -> int:
    """Give this worker node an empty multiprocess directory when it serves metrics; its port.

    A directory named by ``PROMETHEUS_MULTIPROC_DIR`` already (one per node, the operator's
    choice) is emptied; otherwise a fresh one is made and removed when the node exits.
    """
    global node_port
    node_port = requested_port(argv, default_port)
    if node_port == 0:
        return 0
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="switchyard-metrics-"))
        os.environ[ENV] = str(path)
        atexit.register(_remove_when_node_exits, path, os.getpid())
    values = sys.modules.get("prometheus_client.values")
    if values is not None:  # imported before us: make it pick the multiprocess store now
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
    return node_port


def _remove_when_node_exits(path: Path, owner: int) -> None:
    # Forked pool children inherit the exit hook (and mostly leave by os._exit); only the node removes it.
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)
