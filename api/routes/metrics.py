"""``GET /metrics``: this API process's counters and the cluster-wide gauges, for Prometheus.

No API key: Prometheus scrapes with no tenant. Bind the API to a private address or firewall
the path, or set ``metrics.token`` to require ``Authorization: Bearer <token>``
(docs/observability.md). The cluster-wide gauges (limiter, queues, semantic cache checks,
budgets, dead letters, kill switches) are read at scrape time and exported here only, never
by worker nodes, so Prometheus never sums copies of them.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from api.deps import ServicesDep
from api.services import Services
from schemas.errors import AuthenticationFailed
from workers.cluster_metrics import cluster_registry
from workers.metrics.exposition import process_registry, render

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format: per-process counters and histograms, then the cluster gauges."""
    # The token is read from the request, not declared as a parameter: it is the deployment's
    # scrape secret, not part of the API a client calls (and a declared header would be fuzzed).
    check_token(services, request.headers.get("authorization"))
    registries = (process_registry(), _cluster(request, services))
    body = await run_in_threadpool(render, *registries)  # the collectors read Redis and the database
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def check_token(services: Services, authorization: str | None) -> None:
    """Refuse the scrape unless it carries ``metrics.token``, when one is set."""
    token = services.settings.metrics.token
    if token is None or not token.get_secret_value():
        return
    expected = f"Bearer {token.get_secret_value()}".encode()
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
        raise AuthenticationFailed("GET /metrics needs `Authorization: Bearer <metrics.token>`.")


def _cluster(request: Request, services: Services) -> CollectorRegistry:
    registry: CollectorRegistry | None = getattr(request.app.state, "cluster_metrics", None)
    if registry is None:  # one per app: the collectors hold no figures, only their sources
        registry = request.app.state.cluster_metrics = cluster_registry(
            services.settings,
            services.engine,
            services.redis,
            services.limiter,
            services.dispatcher,
            services.results,
            services.budgets,
        )
    return registry
