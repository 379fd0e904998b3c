"""The emulator's Batches endpoints, as OpenAI's, the background run of a batch, and the
``/emulator/batches`` control routes that script batch faults and the completion delay.
"""

import asyncio
import contextlib
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from infra.emulator import batches
from infra.emulator.batches import EmulatedBatch
from infra.emulator.calls import BadRequest, read_json
from infra.emulator.file_api import openai_error
from infra.emulator.provider import Emulator, current_emulator

router = APIRouter(tags=["batches"])


def _check_create(emulator: Emulator, body: dict[str, Any]) -> str | None:
    """What is wrong with a batches.create body, or None."""
    stored = emulator.files.get(str(body.get("input_file_id")))
    if stored is None or stored.purpose != "batch":
        return "input_file_id must name an uploaded file with purpose 'batch'."
    if body.get("endpoint") not in batches.ENDPOINTS:
        return f"endpoint must be one of {sorted(batches.ENDPOINTS)}."
    if body.get("completion_window") != "24h":
        return "completion_window must be '24h'."
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return "metadata must be an object."
    return None


@router.post("/v1/batches", response_model=None)
async def create_batch(request: Request) -> Response | dict[str, Any]:
    """POST /v1/batches: start a batch over an uploaded input file."""
    emulator = current_emulator(request)
    try:
        body = await read_json(request)
    except BadRequest as error:
        return openai_error(400, str(error))
    problem = _check_create(emulator, body)
    if problem:
        return openai_error(400, problem)
    batch = EmulatedBatch(body["endpoint"], body["input_file_id"], "24h", body.get("metadata"))
    emulator.batches[batch.id] = batch
    emulator.stats.batches += 1
    task = asyncio.get_running_loop().create_task(run_batch(emulator, batch))
    emulator.batch_tasks.add(task)  # hold a reference until it ends, as asyncio asks
    task.add_done_callback(emulator.batch_tasks.discard)
    return batch.describe()


@router.get("/v1/batches", response_model=None)
async def list_batches(request: Request, limit: int = 20, after: str | None = None) -> dict[str, Any]:
    """GET /v1/batches: newest first, paged by ``after``."""
    ordered = list(reversed(current_emulator(request).batches.values()))
    if after is not None:
        ids = [batch.id for batch in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    page = ordered[: max(1, min(limit, 100))]
    data = [batch.describe() for batch in page]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > len(page),
    }


@router.get("/v1/batches/{batch_id}", response_model=None)
async def retrieve_batch(request: Request, batch_id: str) -> Response | dict[str, Any]:
    """GET /v1/batches/{id}."""
    batch = current_emulator(request).batches.get(batch_id)
    return batch.describe() if batch else openai_error(404, f"No such Batch object: {batch_id}", "id")


@router.post("/v1/batches/{batch_id}/cancel", response_model=None)
async def cancel_batch(request: Request, batch_id: str) -> Response | dict[str, Any]:
    """POST /v1/batches/{id}/cancel: a running batch goes cancelling, then cancelled."""
    batch = current_emulator(request).batches.get(batch_id)
    if batch is None:
        return openai_error(404, f"No such Batch object: {batch_id}", "id")
    if batch.status in batches.FINAL:
        return openai_error(409, f"Cannot cancel a batch with status {batch.status}.")
    if batch.status != "cancelling":
        batch.move("cancelling")
        batch.cancel_requested.set()
    return batch.describe()


async def run_batch(emulator: Emulator, batch: EmulatedBatch) -> None:
    """Validate, wait the completion delay (or a cancel), answer the lines, write the files."""
    await asyncio.sleep(0)
    stored = emulator.files.get(batch.input_file_id)
    lines, problems = batches.parse_input(stored.data if stored else b"", batch.endpoint)
    outcome = emulator.batch_plan.next_outcome()
    if problems or outcome == "fail":
        batch.errors = problems or [
            {"code": "batch_failed", "message": "Emulated batch failure.", "line": None}
        ]
        batch.move("failed")
        return
    batch.counts["total"] = len(lines)
    batch.move("in_progress")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(batch.cancel_requested.wait(), emulator.batch_plan.completion_delay_s)
    if batch.cancel_requested.is_set():
        _finish(
            emulator,
            batch,
            [],
            [batches.unanswered_line(li, "batch_cancelled", "Cancelled.") for li in lines],
        )
        batch.move("cancelled")
        return
    answered = len(lines) if outcome != "expire" else min(len(lines), emulator.batch_plan.expire_after_lines)
    batch.move("finalizing")
    records = [_answer(emulator, batch, line) for line in lines[:answered]]
    expired = [batches.unanswered_line(li, "batch_expired", "The batch expired.") for li in lines[answered:]]
    outputs = [record for record in records if record["response"]["status_code"] == 200]
    failures = [record for record in records if record["response"]["status_code"] != 200]
    _finish(emulator, batch, outputs, failures + expired)
    batch.move("expired" if outcome == "expire" else "completed")


def _answer(emulator: Emulator, batch: EmulatedBatch, line: dict[str, Any]) -> dict[str, Any]:
    record, tokens = batches.answer_line(line, batch.endpoint, emulator.batch_plan)
    emulator.stats.batch_lines += 1
    emulator.stats.tokens += tokens
    return record


def _finish(emulator: Emulator, batch: EmulatedBatch, outputs: list[Any], failures: list[Any]) -> None:
    # As OpenAI: successes in the output file, errors and unrun lines in the error file.
    batch.counts.update(completed=len(outputs), failed=len(failures))
    if outputs:
        batch.output_file_id = emulator.files.add(
            f"{batch.id}_output.jsonl", "batch_output", batches.jsonl(outputs)
        ).id
    if failures:
        batch.error_file_id = emulator.files.add(
            f"{batch.id}_error.jsonl", "batch_output", batches.jsonl(failures)
        ).id


class BatchScript(BaseModel):
    """Changes to how the next batches behave; fields left out stay as they are."""

    completion_delay_s: float | None = Field(None, ge=0)
    outcomes: list[Literal["fail", "expire"]] | None = None
    expire_after_lines: int | None = Field(None, ge=0)
    line_errors: dict[str, int] | None = None


@router.post("/emulator/batches", tags=["emulator"])
async def script_batches(script: BatchScript, request: Request) -> dict[str, Any]:
    """Script the next batches: delay, outcomes (appended), lines that error (replaced)."""
    plan = current_emulator(request).batch_plan
    if script.completion_delay_s is not None:
        plan.completion_delay_s = script.completion_delay_s
    if script.outcomes:
        plan.outcomes.extend(script.outcomes)
    if script.expire_after_lines is not None:
        plan.expire_after_lines = script.expire_after_lines
    if script.line_errors is not None:
        plan.line_errors = dict(script.line_errors)
    return plan.describe()


@router.get("/emulator/batches", tags=["emulator"])
async def show_batches(request: Request) -> dict[str, Any]:
    """The batch plan, the batch counters (since the last reset) and every batch's status."""
    emulator = current_emulator(request)
    return {
        "plan": emulator.batch_plan.describe(),
        "created": emulator.stats.batches,
        "lines": emulator.stats.batch_lines,
        "batches": [{"id": b.id, "status": b.status, **b.counts} for b in emulator.batches.values()],
    }
