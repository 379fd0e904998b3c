"""Emulated Batch API jobs: validated, processed in the background, written to output files.

A batch goes validating -> in_progress -> (its completion delay) -> completed, as OpenAI's
does, with each line answered by the same deterministic content and token counts as a live
call. An input with a bad line fails the whole batch at validation, with each problem's line
number. Faults, scripted through ``/emulator/batches``: the next batches fail or expire
(after ``expire_after_lines`` lines; the rest land in the error file as ``batch_expired``),
and chosen ``custom_id`` lines answer an error status. Batch lines spend no live rate limit.
"""

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.emulator.calls import BadRequest, parse_chat, parse_embeddings
from infra.emulator.faults import error_body

ENDPOINTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "/v1/chat/completions": parse_chat,
    "/v1/embeddings": parse_embeddings,
}
MAX_LINES = 50_000
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class BatchPlan:
    """How the next batches behave: completion delay, scripted outcomes and line errors."""

    completion_delay_s: float = 0.5
    outcomes: deque[str] = field(default_factory=deque)  # "fail" or "expire", one per batch
    expire_after_lines: int = 0
    line_errors: dict[str, int] = field(default_factory=dict)  # custom_id -> HTTP status

    def next_outcome(self) -> str | None:
        """The scripted outcome of the next batch, if any."""
        return self.outcomes.popleft() if self.outcomes else None

    def describe(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        return {
            "completion_delay_s": self.completion_delay_s,
            "outcomes": list(self.outcomes),
            "expire_after_lines": self.expire_after_lines,
            "line_errors": dict(self.line_errors),
        }


@dataclass
class EmulatedBatch:
    """One batch: its OpenAI fields and the event a cancel sets."""

    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: dict[str, str] | None
    id: str = field(default_factory=lambda: f"batch_{uuid.uuid4().hex[:24]}")
    status: str = "validating"
    created_at: int = field(default_factory=lambda: int(time.time()))
    times: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)

    def move(self, status: str) -> None:
        """Enter ``status`` and stamp its ``<status>_at`` time."""
        self.status = status
        self.times[f"{status}_at"] = int(time.time())

    def describe(self) -> dict[str, Any]:
        """The OpenAI ``batch`` object."""
        stamps = ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + 86_400,
            **{f"{name}_at": self.times.get(f"{name}_at") for name in stamps},
            "request_counts": dict(self.counts),
            "metadata": self.metadata,
        }


def parse_input(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The input's request lines, and its problems (each with its 1-based line number)."""
    lines: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        message = _line_problem(raw, endpoint, seen)
        if message:
            problems.append({"code": "invalid_request", "message": message, "param": None, "line": number})
        else:
            lines.append(json.loads(raw))
            seen.add(lines[-1]["custom_id"])
    if not lines and not problems:
        problems.append({"code": "empty_file", "message": "The input file has no requests.", "line": None})
    if len(lines) > MAX_LINES:
        problems.append({"code": "too_many_requests", "message": f"More than {MAX_LINES} requests."})
    return lines, problems


def _line_problem(raw: str, endpoint: str, seen: set[str]) -> str | None:
    try:
        line = json.loads(raw)
    except ValueError:
        return "The line is not valid JSON."
    if not isinstance(line, dict):
        return "The line must be a JSON object."
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "custom_id must be a non-empty string."
    if custom_id in seen:
        return f"Duplicate custom_id {custom_id!r}."
    if line.get("method") != "POST":
        return "method must be POST."
    if line.get("url") != endpoint:
        return f"url must be the batch's endpoint {endpoint}."
    if not isinstance(line.get("body"), dict):
        return "body must be a JSON object."
    return None


def answer_line(line: dict[str, Any], endpoint: str, plan: BatchPlan) -> tuple[dict[str, Any], int]:
    """One line's output record, as OpenAI writes it, and the tokens it used."""
    status = plan.line_errors.get(line["custom_id"])
    tokens = 0
    if status:
        body: dict[str, Any] = error_body(status)
    else:
        try:
            body, tokens = ENDPOINTS[endpoint](line["body"]).reply()
            status = 200
        except BadRequest as error:
            body, status = error_body(400, str(error), error.param), 400
    response = {"status_code": status, "request_id": f"req_{uuid.uuid4().hex[:24]}", "body": body}
    return _record(line["custom_id"], response, None), tokens


def unanswered_line(line: dict[str, Any], code: str, message: str) -> dict[str, Any]:
    """The error-file record of a line the batch never ran (expired or cancelled)."""
    return _record(line["custom_id"], None, {"code": code, "message": message})


def _record(custom_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:24]}",
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }


def jsonl(records: list[dict[str, Any]]) -> bytes:
    """Records as JSON Lines."""
    return "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records).encode()
