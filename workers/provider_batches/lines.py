"""Pure mapping between job rows and Batch API lines: request lines out, results in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from schemas import errors
from schemas.openai import ChatCompletion, ChatRequest
from schemas.settings import ModelConfig
from schemas.tables import Job
from workers.providers.openai_compat import error_for_status, from_openai_body, to_openai_params

CHAT_ENDPOINT = "/v1/chat/completions"


def request_line(job: Job, model: ModelConfig, default_max_tokens: int) -> dict[str, Any]:
    """The job as one Batch API input line; its ``custom_id`` is the job id."""
    # the tier's default, as Routing sets for a live call
    request = ChatRequest.model_validate(job.request).with_default_max_tokens(default_max_tokens)
    return {
        "custom_id": job.id,
        "method": "POST",
        "url": CHAT_ENDPOINT,
        "body": to_openai_params(request, model),
    }


def encode_line(line: dict[str, Any]) -> bytes:
    """One JSONL line, newline included."""
    return (json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class LineResult:
    """What the provider answered for one job: a completion, or a typed error."""

    custom_id: str
    completion: ChatCompletion | None = None
    error: errors.ProviderError | None = None


def read_results(data: bytes) -> dict[str, LineResult]:
    """The results of an output or error file by ``custom_id``; unreadable lines are skipped."""
    results = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        result = read_record(record)
        if result is not None:
            results[result.custom_id] = result
    return results


def read_record(record: Any) -> LineResult | None:
    """One output or error record; None if it names no ``custom_id`` or the line never ran
    (an expired or cancelled batch's leftovers: their jobs go back to the live lane)."""
    if not isinstance(record, dict) or not isinstance(record.get("custom_id"), str):
        return None
    custom_id, response = record["custom_id"], record.get("response")
    if isinstance(response, dict) and response.get("status_code") == 200:
        try:
            return LineResult(custom_id, completion=from_openai_body(response.get("body")))
        except errors.InvalidOutput as error:
            return LineResult(custom_id, error=error)
    if isinstance(response, dict) and isinstance(response.get("status_code"), int):
        return LineResult(custom_id, error=_status_error(response["status_code"], response.get("body")))
    return None


def _status_error(status: int, body: Any) -> errors.ProviderError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = f"Provider answered {status}: {error.get('message', 'no message')}"[:500]
    code = error.get("code") if isinstance(error.get("code"), str) else None
    return error_for_status(status, message, code)
