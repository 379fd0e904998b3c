"""Prometheus metrics of every process (docs/observability.md, "Metrics").

``definitions`` holds every counter and histogram; ``recording`` the few functions the job's
end paths call; ``node`` prepares a worker node's multiprocess directory before
``prometheus_client`` is imported (so this package's ``__init__`` imports nothing);
``exposition`` renders and serves; ``worker_step`` serves a worker node's port. The API's
cluster-wide collectors are in ``workers/cluster_metrics.py``: they read the stores that
count into this package, and imports between siblings go one way.
"""
