"""Rendering metrics in the Prometheus text format, and a worker node's own HTTP endpoint."""

from __future__ import annotations

import os
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess, start_http_server

from workers.metrics.node import ENV


def process_registry() -> CollectorRegistry:
    """This process's counters: summed over a node's multiprocess files when the node has
    them (worker nodes, an API run with several processes), else the default registry."""
    if os.environ.get(ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render(*registries: CollectorRegistry) -> bytes:
    """The text exposition of ``registries``, one after the other (their names never overlap)."""
    return b"".join(generate_latest(registry) for registry in registries)


def serve_node(port: int, host: str) -> tuple[WSGIServer, Thread]:
    """Serve this node's metrics on ``host:port`` from a daemon thread of its main process."""
    return start_http_server(port, host, registry=process_registry())
