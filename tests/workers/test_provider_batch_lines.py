"""Pure mapping of the provider batch lane: request lines, result records, batch prices."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests_support import completion_body

from schemas import errors
from schemas.openai import CompletionUsage
from schemas.settings import ModelConfig
from schemas.tables import Job, utcnow
from workers.middleware.usage import call_cost_usd
from workers.provider_batches.lines import (
    encode_line,
    read_record,
    read_results,
    request_line,
)

MODEL = ModelConfig.model_validate(
    {"provider": "p", "model": "provider-model", "input_usd_per_mtok": 1.0, "output_usd_per_mtok": 4.0}
)
COMPLETION = completion_body("provider-model", "Hi", prompt_tokens=7, completion_tokens=2)


def job(request: dict[str, Any]) -> Job:
    now = utcnow()
    return Job(
        id="job_1", tenant_id="t", tier="x", request=request, attempt_log=[], created_at=now, updated_at=now
    )


def test_request_line_names_the_provider_model_and_the_tier_default_max_tokens() -> None:
    line = request_line(job({"model": "alias", "messages": [{"role": "user", "content": "x"}]}), MODEL, 48)
    assert line["custom_id"] == "job_1" and line["url"] == "/v1/chat/completions" and line["method"] == "POST"
    assert line["body"]["model"] == "provider-model" and line["body"]["max_tokens"] == 48
    kept = request_line(job({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}), MODEL, 48)
    assert kept["body"]["max_tokens"] == 5
    assert json.loads(encode_line(line)) == line and encode_line(line).endswith(b"\n")


def test_a_200_record_is_a_validated_completion() -> None:
    result = read_record(
        {"custom_id": "a", "response": {"status_code": 200, "body": COMPLETION}, "error": None}
    )
    assert result is not None and result.completion is not None and result.completion.usage.prompt_tokens == 7


@pytest.mark.parametrize(
    ("status", "code", "error_class", "retryable"),
    [
        (400, "invalid_request", errors.ProviderBadRequest, False),
        (400, "context_length_exceeded", errors.ContextTooLong, False),
        (429, "rate_limit_exceeded", errors.ProviderRateLimited, True),
        (500, "internal_error", errors.ProviderUnavailable, True),
    ],
)
def test_an_error_record_is_the_typed_error_of_its_status(
    status: int, code: str, error_class: type[errors.ProviderError], retryable: bool
) -> None:
    body = {"error": {"message": "nope", "code": code}}
    result = read_record({"custom_id": "a", "response": {"status_code": status, "body": body}})
    assert result is not None and type(result.error) is error_class and result.error.retryable is retryable
    assert "nope" in result.error.message


def test_a_malformed_completion_is_a_retryable_invalid_output() -> None:
    result = read_record({"custom_id": "a", "response": {"status_code": 200, "body": {"choices": "oops"}}})
    assert result is not None and isinstance(result.error, errors.InvalidOutput) and result.error.retryable


def test_lines_that_never_ran_or_name_nothing_are_left_out() -> None:
    expired = {"custom_id": "a", "response": None, "error": {"code": "batch_expired", "message": "late"}}
    data = b"\n".join(
        [
            json.dumps(expired).encode(),
            b"{broken",
            json.dumps({"response": {}}).encode(),
            json.dumps([1]).encode(),
        ]
    )
    assert read_record(expired) is None and read_results(data) == {}


def test_batch_prices_default_to_half_and_explicit_ones_win() -> None:
    usage = CompletionUsage(prompt_tokens=1_000_000, completion_tokens=1_000_000, total_tokens=2_000_000)
    assert MODEL.batch_prices() == (0.5, 2.0)
    assert call_cost_usd(MODEL, usage, batch_api=True) == pytest.approx(2.5)
    assert call_cost_usd(MODEL, usage) == pytest.approx(5.0)  # the live prices
    explicit = MODEL.model_copy(update={"batch_input_usd_per_mtok": 0.1, "batch_output_usd_per_mtok": 0.2})
    assert call_cost_usd(explicit, usage, batch_api=True) == pytest.approx(0.3)
