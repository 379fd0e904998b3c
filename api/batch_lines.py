"""Reading a batch's input line by line, before anything is queued.

Each line of OpenAI's Batch input format is ``{"custom_id", "method": "POST", "url", "body"}``.
A line is checked exactly like one ``POST /v1/jobs`` body (``JobCreate`` and
:func:`api.job_limits.check_job`), plus the batch's own rules: valid JSON, a ``custom_id``
unique in the batch, the batch's endpoint, and a ``body.model`` that names the batch's tier
or one of its model aliases. Every bad line is reported with its 1-based number.

Each line is routed on its own by the batch tier's rules (or its auto tier), with the batch's
``metadata`` as the line's, so one batch may fill the queues of several tiers (docs/spend.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from api.job_limits import check_job
from schemas import errors
from schemas.jobs import JobCreate
from schemas.settings import Settings
from workers.routing_rules import route_request

ENDPOINT_KINDS = {"/v1/chat/completions": "chat", "/v1/embeddings": "embedding"}
SHOWN_ERRORS = 100


@dataclass(frozen=True)
class LineError:
    """A bad input line: its 1-based number, custom_id if readable, code and reason."""

    line: int
    code: str
    message: str
    custom_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message, "custom_id": self.custom_id}


@dataclass(frozen=True)
class LineJob:
    """A good line as the job it becomes; ``index`` is its 0-based place in the input."""

    index: int
    custom_id: str
    job: JobCreate
    routing: dict[str, Any] | None = None  # the rule that routed it off the batch's tier


@dataclass
class ParsedLines:
    """The outcome of reading a batch's input: the jobs, the bad lines, the batch's tier."""

    tier: str | None
    jobs: list[LineJob] = field(default_factory=list)
    invalid: list[LineError] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.jobs) + len(self.invalid)


class LineReader:
    """Checks lines for one batch: its endpoint, its tier (or the first line's), its window."""

    def __init__(
        self,
        settings: Settings,
        endpoint: str,
        tier: str | None,
        completion_window: str,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata or {}  # the batch's, which routing rules read for each line
        # Only 24h reaches the jobs: it lets them wait for a provider's Batch API.
        self.completion_window = "24h" if completion_window == "24h" else None
        self.endpoint = endpoint
        self.kind = ENDPOINT_KINDS[endpoint]
        self.parsed = ParsedLines(tier=tier)
        self._seen: set[str] = set()

    def read_jsonl(self, data: bytes) -> ParsedLines:
        """Every non-blank line of a JSONL upload."""
        lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")  # a UTF-8 BOM is not JSON
        self._check_count(sum(1 for raw in lines if raw.strip()))
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                self._read_raw(number, raw)
        return self.parsed

    def read_bodies(self, bodies: list[dict[str, Any]]) -> ParsedLines:
        """The direct JSON form: each item is a request body, with an optional ``custom_id``."""
        self._check_count(len(bodies))
        for number, item in enumerate(bodies, start=1):
            body = dict(item) if isinstance(item, dict) else item
            custom_id = body.pop("custom_id", f"line-{number}") if isinstance(body, dict) else None
            line = {"custom_id": custom_id, "method": "POST", "url": self.endpoint, "body": body}
            self._read_line(number, line)
        return self.parsed

    def _check_count(self, count: int) -> None:
        limit = self.settings.max_batch_lines
        if count > limit:
            raise errors.BatchTooLarge(
                f"The batch has {count} lines; at most {limit} are allowed. Split it into several batches.",
                max_lines=limit,
            )
        if count == 0:
            raise errors.InvalidBatchFile("The batch input has no lines.", errors=[], more_errors=0)

    def _read_raw(self, number: int, raw: bytes) -> None:
        try:
            line = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            self._bad(number, "invalid_json", f"Not valid JSON: {str(exc)[:200]}.")
            return
        self._read_line(number, line)

    def _read_line(self, number: int, line: Any) -> None:
        problem = self._envelope_problem(line)
        if problem is not None:
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            self._bad(number, problem[0], problem[1], custom_id if isinstance(custom_id, str) else None)
            return
        custom_id, body = line["custom_id"], line["body"]
        if custom_id in self._seen:
            message = f"custom_id {custom_id!r} is used by an earlier line."
            self._bad(number, "duplicate_custom_id", message, custom_id)
            return
        self._seen.add(custom_id)
        try:
            job, routing = self._job(body)
        except errors.SwitchyardError as exc:
            self._bad(number, exc.code, exc.message, custom_id)
            return
        self.parsed.jobs.append(LineJob(number - 1, custom_id, job, routing))

    def _envelope_problem(self, line: Any) -> tuple[str, str] | None:
        if not isinstance(line, dict):
            return "invalid_line", "A line must be a JSON object {custom_id, method, url, body}."
        unknown = set(line) - {"custom_id", "method", "url", "body"}
        if unknown:
            return (
                "invalid_line",
                f"Unknown field(s) {sorted(unknown)}; a line has custom_id, method, url, body.",
            )
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 512 or "\x00" in custom_id:
            return "invalid_custom_id", "custom_id must be a string of 1 to 512 characters."
        if line.get("method", "POST") != "POST":
            return "invalid_method", "method must be POST."
        if line.get("url") != self.endpoint:
            return "wrong_endpoint", f"url must be the batch's endpoint {self.endpoint!r}."
        if not isinstance(line.get("body"), dict):
            return "invalid_body", "body must be a JSON object: the request of the endpoint."
        return None

    def _job(self, body: dict[str, Any]) -> tuple[JobCreate, dict[str, Any] | None]:
        """The line's body as a batch job on the tier it routes to, checked like ``POST /v1/jobs``,
        and the routing record."""
        tier, request = self._route(body)
        try:
            job = JobCreate.model_validate(
                {
                    "tier": tier,
                    "kind": self.kind,
                    "request": request,
                    "priority": "batch",
                    "completion_window": self.completion_window,
                    "metadata": self.metadata,
                }
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"] if part != "request") or "body"
            raise errors.RequestValidationFailed(f"body.{where}: {first['msg']}.") from exc
        job, routing = route_request(self.settings, job)
        check_job(job, self.settings)
        return job, routing

    def _route(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The tier a body's ``model`` names (directly or by a model alias), and the request
        to store: without ``model`` when it named the tier, so the tier routes."""
        model = body.get("model")
        tier = self.parsed.tier
        if model is not None and not isinstance(model, str):
            raise errors.RequestValidationFailed("body.model must be a string.")
        requestable = model in self.settings.tiers or model in self.settings.auto_tiers
        if model is not None and requestable and tier in (None, model):
            self.parsed.tier = model
            return model, {k: v for k, v in body.items() if k != "model"}
        if tier is None:
            tier = self._tier_of_alias(model)
            self.parsed.tier = tier
        return tier, body

    def _tier_of_alias(self, model: str | None) -> str:
        if model is None:
            raise errors.UnknownTier(
                "body.model must name a tier or a model alias (or pass `tier` for the batch)."
            )
        for name, tier in self.settings.tiers.items():  # config order: the first tier wins
            if model in tier.models:
                return name
        known = sorted(self.settings.tiers)
        raise errors.UnknownModel(
            f"body.model {model!r} is neither a tier ({', '.join(known)}) nor a model alias of one."
        )

    def _bad(self, number: int, code: str, message: str, custom_id: str | None = None) -> None:
        self.parsed.invalid.append(LineError(number, code, message, custom_id))


def reject_invalid(parsed: ParsedLines) -> None:
    """Refuse the whole input when any line is bad, listing the first ``SHOWN_ERRORS``."""
    if not parsed.invalid:
        return
    shown = parsed.invalid[:SHOWN_ERRORS]
    more = len(parsed.invalid) - len(shown)
    first = shown[0]
    raise errors.InvalidBatchFile(
        f"{len(parsed.invalid)} of {parsed.total} lines are invalid (line {first.line}: {first.message}); "
        "nothing was queued. Fix them, or pass skip_invalid_lines=true to run the valid lines.",
        errors=[error.as_dict() for error in shown],
        more_errors=more,
    )
