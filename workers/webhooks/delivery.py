"""One delivery attempt: claim it, sign the stored body afresh, POST it, record what happened.

2xx succeeds. 410 disables the endpoint (and ends the delivery). Anything else, a timeout or
a refused connection schedules the next attempt, honouring Retry-After on 429 and 503, until
the schedule is used up: then the delivery is failed, the dead letter. A URL the SSRF guard
refuses at send time fails at once; nothing is sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
import structlog
from redis import Redis
from sqlalchemy.engine import Engine

from schemas.errors import UnsafeCallbackUrl
from schemas.settings import Settings
from schemas.tables import WebhookDelivery, WebhookEndpoint, utcnow
from workers import tracing
from workers.keys import RedisKeys
from workers.metrics import definitions as metrics
from workers.webhooks import deliveries, endpoints, spans
from workers.webhooks.deliveries import FAILED, PENDING, SUCCEEDED, AttemptResult
from workers.webhooks.schedule import next_delay, parse_retry_after
from workers.webhooks.signing import live_secrets, signed_headers
from workers.webhooks.ssrf import ResolutionFailed

log = structlog.get_logger("switchyard.webhooks")
RETRY_AFTER_CODES = (429, 503)
MAX_ANSWER_BYTES = 65_536


@dataclass
class Deliverer:
    """Sends delivery attempts; one per worker process, sharing its HTTP client."""

    settings: Settings
    engine: Engine
    redis: Redis
    keys: RedisKeys
    client: httpx.Client

    def attempt(self, delivery_id: str, seen_attempts: int) -> str:
        """Make attempt ``seen_attempts + 1`` of the delivery; what became of it."""
        claimed = deliveries.claim(self.engine, delivery_id, seen_attempts, self.settings.webhooks.claim_s)
        if claimed is None:
            return "skipped"
        delivery, endpoint = claimed.delivery, claimed.endpoint
        attempt = seen_attempts + 1
        if delivery.endpoint_id and (endpoint is None or not endpoint.enabled):
            reason = (
                "endpoint deleted" if endpoint is None else f"endpoint disabled: {endpoint.disabled_reason}"
            )
            return self._finish(delivery, attempt, AttemptResult(None, reason, None), FAILED)
        try:
            send = lambda: self._send(delivery, endpoint)  # noqa: E731
            result, retry_after = spans.send_in_span(send, self.redis, self.keys, delivery, attempt)
        except httpx.InvalidURL as invalid:
            return self._finish(
                delivery, attempt, AttemptResult(None, f"invalid URL: {invalid}", None), FAILED
            )
        except UnsafeCallbackUrl as refused:  # checked again at send time: DNS may have changed
            return self._finish(
                delivery, attempt, AttemptResult(None, f"{refused.code}: {refused.message}", None), FAILED
            )
        return self._settle(delivery, endpoint, attempt, result, retry_after)

    def _send(
        self, delivery: WebhookDelivery, endpoint: WebhookEndpoint | None
    ) -> tuple[AttemptResult, float | None]:
        now = utcnow()
        if endpoint is not None:
            secrets = endpoints.endpoint_secrets(endpoint, now)
        else:  # a job's callback_url is signed with the tenant's default secret
            default = endpoints.tenant_secret(self.engine, delivery.tenant_id)
            secrets = live_secrets(
                default.secret, default.previous_secret, default.previous_secret_expires_at, now
            )
        headers = signed_headers(delivery.event_id, delivery.body, secrets, now)
        headers.update(tracing.outgoing_headers() or {})  # traceparent, while tracing is on
        started = time.perf_counter()
        try:
            with self.client.stream(
                "POST", delivery.url, content=delivery.body.encode(), headers=headers
            ) as response:
                elapsed = round((time.perf_counter() - started) * 1000, 2)
                _drain(response)
                error = None if response.is_success else _describe(response)
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                return AttemptResult(response.status_code, error, elapsed), retry_after
        except (httpx.HTTPError, ResolutionFailed, OSError) as exc:
            elapsed = round((time.perf_counter() - started) * 1000, 2)
            return AttemptResult(None, f"{type(exc).__name__}: {exc}", elapsed), None

    def _settle(
        self,
        delivery: WebhookDelivery,
        endpoint: WebhookEndpoint | None,
        attempt: int,
        result: AttemptResult,
        retry_after: float | None,
    ) -> str:
        code = result.status_code
        if code is not None and 200 <= code < 300:
            if endpoint is not None and endpoint.failing_since is not None:
                endpoints.mark_healthy(self.engine, endpoint.id)
            return self._finish(delivery, attempt, result, SUCCEEDED)
        if code == 410:
            if endpoint is not None:
                endpoints.disable(
                    self.engine, self.redis, self.keys, endpoint, "the endpoint answered 410 Gone"
                )
            return self._finish(delivery, attempt, result, FAILED)
        if endpoint is not None and endpoints.mark_failing(
            self.engine, endpoint.id, self.settings.webhooks.disable_after_failing_s
        ):
            days = self.settings.webhooks.disable_after_failing_s / 86_400
            endpoints.disable(self.engine, self.redis, self.keys, endpoint, f"failing for {days:g} days")
        delay = next_delay(
            self.settings.webhooks, attempt, retry_after if code in RETRY_AFTER_CODES else None
        )
        if delay is None:
            return self._finish(delivery, attempt, result, FAILED)
        deliveries.record(
            self.engine, delivery.id, attempt, result, utcnow() + timedelta(seconds=delay), PENDING
        )
        metrics.webhook_deliveries.labels(delivery.event_type, "retrying").inc()
        return "retrying"

    def _finish(self, delivery: WebhookDelivery, attempt: int, result: AttemptResult, status: str) -> str:
        deliveries.record(self.engine, delivery.id, attempt, result, None, status)
        metrics.webhook_deliveries.labels(delivery.event_type, status).inc()
        if status == FAILED:
            log.warning("webhook_dead_letter", delivery=delivery.id, attempts=attempt, error=result.error)
        return status


def _drain(response: httpx.Response) -> None:
    # Reading a short answer to its end lets the connection go back to the pool; a long one
    # is cut off (the connection closes) rather than held in memory.
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read > MAX_ANSWER_BYTES:
            break


def _describe(response: httpx.Response) -> str:
    location = response.headers.get("location")
    if response.is_redirect:
        return f"HTTP {response.status_code}: redirects are not followed (to {location!r})"
    return f"HTTP {response.status_code}"
