"""A batch's output and error files, as OpenAI Batch output JSONL, streamed in input order.

Output lines: ``{"id", "custom_id", "response": {"status_code": 200, "request_id", "body"},
"error": null}`` for each succeeded job. Error lines: ``{"id", "custom_id", "response": null,
"error": {"code", "message"}}`` for each failed or canceled job and each skipped invalid line
(those carry ``line``, their 1-based line number). Rows are read a page at a time, so a
50,000-line batch is never held in memory.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Engine

from schemas.tables import Batch
from workers import batch_store


def output_lines(engine: Engine, batch: Batch) -> Iterator[bytes]:
    """The succeeded lines, in input order."""
    for page in batch_store.line_pages(engine, batch.id, ("succeeded",)):
        yield b"".join(_encode(_response_line(row)) for row in page)


def error_lines(engine: Engine, batch: Batch) -> Iterator[bytes]:
    """The failed and canceled lines and the skipped invalid ones, in input order."""
    jobs = (
        (row.batch_line, _failure_line(row))
        for page in batch_store.line_pages(engine, batch.id, ("failed", "canceled"))
        for row in page
    )
    invalid = ((entry["line"] - 1, _invalid_line(batch, entry)) for entry in batch.invalid_lines or [])
    for _, line in heapq.merge(jobs, invalid, key=lambda pair: pair[0]):
        yield _encode(line)


def _response_line(row: Any) -> dict[str, Any]:
    return {
        "id": f"batch_req_{row.id.removeprefix('job_')}",
        "custom_id": row.custom_id,
        "response": {"status_code": 200, "request_id": row.id, "body": row.result},
        "error": None,
    }


def _failure_line(row: Any) -> dict[str, Any]:
    return {
        "id": f"batch_req_{row.id.removeprefix('job_')}",
        "custom_id": row.custom_id,
        "response": None,
        "error": {"code": row.error_code or row.status, "message": row.error_message or ""},
    }


def _invalid_line(batch: Batch, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"batch_req_{batch.id.removeprefix('batch_')}_line{entry['line']}",
        "custom_id": entry.get("custom_id"),
        "response": None,
        "error": {"code": entry["code"], "message": entry["message"], "line": entry["line"]},
    }


def _encode(line: dict[str, Any]) -> bytes:
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
