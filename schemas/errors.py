"""The one error tree of Switchyard.

Every error carries an HTTP status, a stable ``code`` and whether retrying may help::

    SwitchyardError (500 internal_error)
    ├── InvalidRequest (400 invalid_request)
    │   ├── UnknownTier (400 unknown_tier)
    │   ├── UnknownModel (400 unknown_model)
    │   ├── MetadataTooLarge (400 metadata_too_large)
    │   ├── InvalidCallbackUrl (400 invalid_callback_url)
    │   ├── TooManyMessages (400 too_many_messages)
    │   ├── ContentTooLong (400 content_too_long)
    │   ├── MaxTokensOutOfRange (400 max_tokens_out_of_range)
    │   └── InvalidIdempotencyKey (400 invalid_idempotency_key)
    ├── RequestValidationFailed (422 validation_error)
    ├── IdempotencyKeyReused (422 idempotency_key_reused)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── AuthenticationFailed (401 invalid_api_key)
    ├── PermissionDenied (403 insufficient_scope)
    ├── NotFound (404 not_found)
    ├── JobNotCancelable (409 job_not_cancelable)
    ├── ServiceUnavailable (503 service_unavailable, retryable)
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
"""

from __future__ import annotations

from typing import Any, ClassVar


class SwitchyardError(Exception):
    """Root of every error Switchyard raises on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    retryable: ClassVar[bool] = False

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


class TooManyMessages(InvalidRequest):
    code = "too_many_messages"


class ContentTooLong(InvalidRequest):
    code = "content_too_long"


class MaxTokensOutOfRange(InvalidRequest):
    code = "max_tokens_out_of_range"


class InvalidIdempotencyKey(InvalidRequest):
    code = "invalid_idempotency_key"


class RequestValidationFailed(SwitchyardError):
    status_code = 422
    code = "validation_error"


class IdempotencyKeyReused(SwitchyardError):
    status_code = 422
    code = "idempotency_key_reused"


class PayloadTooLarge(SwitchyardError):
    status_code = 413
    code = "payload_too_large"


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


class ServiceUnavailable(SwitchyardError):
    status_code = 503
    code = "service_unavailable"
    retryable = True


class MaxAttemptsExceeded(SwitchyardError):
    code = "max_attempts"


class NoModelAvailable(SwitchyardError):
    status_code = 503
    code = "no_model_available"


class ProviderError(SwitchyardError):
    """A provider call failed; ``retryable`` says whether another try may succeed."""

    status_code = 502
    code = "provider_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


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
