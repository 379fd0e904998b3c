"""The one error tree of Switchyard.

Every error carries an HTTP status, a stable ``code`` and whether retrying may help::

    SwitchyardError (500 internal_error)
    ├── InvalidRequest (400 invalid_request)
    │   ├── UnknownTier (400 unknown_tier)
    │   ├── UnknownModel (400 unknown_model)
    │   ├── MetadataTooLarge (400 metadata_too_large)
    │   ├── InvalidCallbackUrl (400 invalid_callback_url)
    │   ├── UnsafeCallbackUrl (400 unsafe_callback_url: the SSRF guard)
    │   ├── UnknownEventType (400 unknown_event_type)
    │   ├── TooManyWebhookEndpoints (400 too_many_webhook_endpoints)
    │   ├── TooManyMessages (400 too_many_messages)
    │   ├── ContentTooLong (400 content_too_long)
    │   ├── MaxTokensOutOfRange (400 max_tokens_out_of_range)
    │   ├── WrongJobKind (400 wrong_job_kind)
    │   ├── TooManyInputs (400 too_many_inputs)
    │   ├── CacheModeUnsupported (400 cache_mode_unsupported)
    │   ├── InvalidIdempotencyKey (400 invalid_idempotency_key)
    │   ├── InvalidLastEventId (400 invalid_last_event_id)
    │   ├── InvalidCursor (400 invalid_cursor)
    │   └── InvalidSchedule (400 invalid_schedule)
    ├── RequestValidationFailed (422 validation_error)
    ├── IdempotencyKeyReused (422 idempotency_key_reused)
    ├── InvalidBatchFile (422 invalid_batch_file; ``errors`` lists bad lines by number)
    ├── PayloadTooLarge (413 payload_too_large)
    │   └── BatchTooLarge (413 batch_too_large)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── AuthenticationFailed (401 invalid_api_key)
    ├── PermissionDenied (403 insufficient_scope)
    ├── NotFound (404 not_found)
    ├── JobNotCancelable (409 job_not_cancelable)
    ├── DeliveryPending (409 delivery_pending)
    ├── WebhookEndpointDisabled (409 webhook_endpoint_disabled)
    ├── BatchNotCancelable (409 batch_not_cancelable)
    ├── KnownQueryExists (409 known_query_exists)
    ├── ServiceUnavailable (503 service_unavailable, retryable; Retry-After when it is known)
    ├── TooManyRequests (429 too_many_requests, retryable; answered with Retry-After)
    │   ├── TenantRateLimited (429 tenant_rate_limited)
    │   ├── TierSaturated (429 tier_saturated)
    │   └── QueueFull (429 queue_full)
    ├── CapacityExhausted (429 capacity_exhausted, retryable, not an attempt)
    │   └── TenantBusy (429 tenant_busy)
    ├── ExceedsRateLimit (400 exceeds_rate_limit)
    ├── MaxAttemptsExceeded (500 max_attempts)
    ├── NoModelAvailable (503 no_model_available)
    └── ProviderError (502 provider_error)
        ├── ProviderRateLimited (429 rate_limited, retryable)
        ├── ProviderUnavailable (503 provider_unavailable, retryable)
        ├── ProviderTimeout (504 provider_timeout, retryable)
        ├── ProviderConnectionError (502 provider_connection_error, retryable)
        ├── InvalidOutput (502 invalid_output, retryable)
        ├── ProviderBadRequest (400 provider_bad_request)
        ├── ProviderAuthenticationFailed (502 provider_authentication_failed)
        └── ContextTooLong (400 context_length_exceeded)

Spend control's errors (budgets, the kill switch, disabled tenants) are in schemas/spend_errors.py.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SwitchyardError(Exception):
    """Root of every error Switchyard raises on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    retryable: ClassVar[bool] = False
    # False for a job handed back before any provider call: it does not use up an attempt.
    counts_as_attempt: ClassVar[bool] = True

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` body every 4xx/5xx answer carries."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class InvalidRequest(SwitchyardError):
    status_code = 400
    code = "invalid_request"


class UnknownTier(InvalidRequest):
    code = "unknown_tier"


class UnknownModel(InvalidRequest):
    code = "unknown_model"


class MetadataTooLarge(InvalidRequest):
    code = "metadata_too_large"


class InvalidCallbackUrl(InvalidRequest):
    code = "invalid_callback_url"


class UnsafeCallbackUrl(InvalidRequest):
    """A webhook URL that could reach a non-public address, or with a scheme not allowed."""

    code = "unsafe_callback_url"


class UnknownEventType(InvalidRequest):
    code = "unknown_event_type"


class TooManyWebhookEndpoints(InvalidRequest):
    code = "too_many_webhook_endpoints"


class TooManyMessages(InvalidRequest):
    code = "too_many_messages"


class ContentTooLong(InvalidRequest):
    code = "content_too_long"


class MaxTokensOutOfRange(InvalidRequest):
    code = "max_tokens_out_of_range"


class WrongJobKind(InvalidRequest):
    """A job whose kind the tier does not serve, e.g. an embedding job on a chat tier."""

    code = "wrong_job_kind"


class TooManyInputs(InvalidRequest):
    code = "too_many_inputs"


class CacheModeUnsupported(InvalidRequest):
    """A cache mode the job's kind cannot use (semantic matching is for chat questions)."""

    code = "cache_mode_unsupported"


class InvalidIdempotencyKey(InvalidRequest):
    code = "invalid_idempotency_key"


class InvalidSchedule(InvalidRequest):
    """A known query's refresh (``every_s`` / ``cron``), window or time zone is not usable;
    ``param`` names the field."""

    code = "invalid_schedule"


class InvalidLastEventId(InvalidRequest):
    """A ``Last-Event-ID`` that is not an event id of GET /v1/events."""

    code = "invalid_last_event_id"


class InvalidCursor(InvalidRequest):
    """A list's ``cursor`` that is not the ``next_cursor`` of one of the caller's pages."""

    code = "invalid_cursor"


class RequestValidationFailed(SwitchyardError):
    status_code = 422
    code = "validation_error"


class IdempotencyKeyReused(SwitchyardError):
    status_code = 422
    code = "idempotency_key_reused"


class PayloadTooLarge(SwitchyardError):
    status_code = 413
    code = "payload_too_large"


class BatchTooLarge(PayloadTooLarge):
    """A batch input over the line limit (the byte limit answers ``payload_too_large``)."""

    code = "batch_too_large"


class InvalidBatchFile(SwitchyardError):
    """A batch input with bad lines; ``errors`` gives each line's number, code and reason."""

    status_code = 422
    code = "invalid_batch_file"


class UnsupportedMediaType(SwitchyardError):
    status_code = 415
    code = "unsupported_media_type"


class AuthenticationFailed(SwitchyardError):
    status_code = 401
    code = "invalid_api_key"


class PermissionDenied(SwitchyardError):
    status_code = 403
    code = "insufficient_scope"


class NotFound(SwitchyardError):
    status_code = 404
    code = "not_found"


class JobNotCancelable(SwitchyardError):
    status_code = 409
    code = "job_not_cancelable"


class BatchNotCancelable(SwitchyardError):
    """The batch already ended; ``status`` says how."""

    status_code = 409
    code = "batch_not_cancelable"


class DeliveryPending(SwitchyardError):
    """A webhook delivery still being tried cannot be redelivered yet."""

    status_code = 409
    code = "delivery_pending"


class WebhookEndpointDisabled(SwitchyardError):
    """Redelivery to a disabled endpoint; enable it first (PATCH ``enabled: true``)."""

    status_code = 409
    code = "webhook_endpoint_disabled"


class KnownQueryExists(SwitchyardError):
    """The tenant already registered this request on this tier; ``known_query_id`` names it."""

    status_code = 409
    code = "known_query_exists"


class ServiceUnavailable(SwitchyardError):
    """A store the API needs (Redis, the database) is not answering; ``retry_after`` seconds,
    when given, is when to try again (answered as Retry-After)."""

    status_code = 503
    code = "service_unavailable"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **details: Any) -> None:
        if retry_after is not None:
            details["retry_after_s"] = round(retry_after, 3)
        super().__init__(message, **details)
        self.retry_after = retry_after


class TooManyRequests(SwitchyardError):
    """The API will not take this now; ``retry_after`` seconds is when to try again."""

    status_code = 429
    code = "too_many_requests"
    retryable = True

    def __init__(self, message: str, *, retry_after: float, **details: Any) -> None:
        super().__init__(message, retry_after_s=round(retry_after, 3), **details)
        self.retry_after = retry_after


class TenantRateLimited(TooManyRequests):
    code = "tenant_rate_limited"


class TierSaturated(TooManyRequests):
    code = "tier_saturated"


class QueueFull(TooManyRequests):
    code = "queue_full"


class CapacityExhausted(SwitchyardError):
    """No model of the job's chain has rate-limit capacity soon; the job goes back to wait."""

    status_code = 429
    code = "capacity_exhausted"
    retryable = True
    counts_as_attempt = False

    def __init__(self, message: str, *, retry_after: float, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class TenantBusy(CapacityExhausted):
    """The job's tenant has its maximum of jobs running; the job waits its turn."""

    code = "tenant_busy"


class ExceedsRateLimit(SwitchyardError):
    """The call alone needs more tokens than a window of every model of its chain allows."""

    status_code = 400
    code = "exceeds_rate_limit"


class MaxAttemptsExceeded(SwitchyardError):
    code = "max_attempts"


class NoModelAvailable(SwitchyardError):
    status_code = 503
    code = "no_model_available"


class ProviderError(SwitchyardError):
    """A provider call failed; ``retryable`` says whether another try may succeed."""

    status_code = 502
    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after
        self.headers = headers or {}  # the provider's x-ratelimit-* headers, for the limiter


class ProviderRateLimited(ProviderError):
    status_code = 429
    code = "rate_limited"
    retryable = True


class ProviderUnavailable(ProviderError):
    status_code = 503
    code = "provider_unavailable"
    retryable = True


class ProviderTimeout(ProviderError):
    status_code = 504
    code = "provider_timeout"
    retryable = True


class ProviderConnectionError(ProviderError):
    code = "provider_connection_error"
    retryable = True


class InvalidOutput(ProviderError):
    code = "invalid_output"
    retryable = True


class ProviderBadRequest(ProviderError):
    status_code = 400
    code = "provider_bad_request"


class ProviderAuthenticationFailed(ProviderError):
    code = "provider_authentication_failed"


class ContextTooLong(ProviderError):
    status_code = 400
    code = "context_length_exceeded"
