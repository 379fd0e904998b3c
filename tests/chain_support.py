"""Builders for policy-chain tests: a job, its context, a provider answer, a journaling middleware,
and a worker runtime on SQLite."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture
from tests_support import make_test_settings

from schemas.errors import SwitchyardError
from schemas.openai import ChatCompletion, ChatRequest
from schemas.settings import Settings
from schemas.tables import Job, utcnow
from workers.celery_app import create_celery
from workers.chain import CallContext, Middleware, ProviderCall
from workers.middleware import call_log
from workers.migrate import upgrade
from workers.providers.base import ProviderResponse
from workers.runtime import Runtime


def make_job(tier: str = "small", attempts: int = 1, attempt_log: list[dict[str, Any]] | None = None) -> Job:
    """A claimed chat job of tenant ``ten_test``, never stored."""
    now = utcnow()
    return Job(
        id="job_test",
        tenant_id="ten_test",
        tier=tier,
        status="running",
        request={"messages": [{"role": "user", "content": "Hi"}]},
        attempts=attempts,
        attempt_log=attempt_log or [],
        job_metadata={},
        created_at=now,
        updated_at=now,
    )


def make_ctx(settings: Settings, job: Job | None = None, **request: Any) -> CallContext:
    """The context of one attempt of ``job`` (a fresh one by default); ``request`` adds fields."""
    job = job or make_job()
    body = {"messages": [{"role": "user", "content": "Hi"}], **request}
    return CallContext(job=job, settings=settings, request=ChatRequest.model_validate(body))


def completion(prompt_tokens: int = 10, completion_tokens: int = 5) -> ProviderResponse[ChatCompletion]:
    """A provider's chat answer with the given usage."""
    body = {
        "id": "chatcmpl-1",
        "created": 1,
        "model": "emu-a",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return ProviderResponse(completion=ChatCompletion.model_validate(body))


class Recorder(Middleware):
    """Writes every hook it runs into a shared journal; may misbehave on request."""

    def __init__(
        self,
        name: str,
        journal: list[str],
        raise_before: BaseException | None = None,
        answer: ProviderResponse[ChatCompletion] | None = None,
        raise_after: SwitchyardError | None = None,
    ) -> None:
        self.name = name
        self.journal = journal
        self.raise_before = raise_before
        self.answer = answer
        self.raise_after = raise_after

    def before_call(self, ctx: CallContext) -> None:
        self.journal.append(f"{self.name}.before")
        if self.raise_before is not None:
            raise self.raise_before
        if self.answer is not None:
            ctx.response = self.answer

    def after_call(self, ctx: CallContext) -> None:
        self.journal.append(f"{self.name}.after")
        if self.raise_after is not None:
            raise self.raise_after

    def on_error(self, ctx: CallContext) -> None:
        self.journal.append(f"{self.name}.on_error")

    def after_attempt(self, ctx: CallContext, settled: bool) -> None:
        self.journal.append(f"{self.name}.after_attempt({settled})")


def recording_call(journal: list[str], error: SwitchyardError | None = None) -> ProviderCall:
    """A provider call that journals itself, then answers or raises ``error``."""

    def call(ctx: CallContext) -> ProviderResponse[ChatCompletion]:
        journal.append("call")
        if error is not None:
            raise error
        return completion()

    return call


@contextmanager
def sqlite_runtime(tmp: Path, redis_url: str) -> Iterator[Runtime]:
    """A worker runtime on a migrated SQLite database under ``tmp``, with its own key prefix."""
    settings = make_test_settings(tmp, redis_url)
    upgrade(settings)
    rt = Runtime(settings=settings, celery=create_celery(settings))
    try:
        yield rt
    finally:
        for key in rt.redis.scan_iter(f"{settings.key_prefix}:*"):
            rt.redis.delete(key)
        rt.engine.dispose()
        rt.redis.close()


@pytest.fixture
def call_log_lines(monkeypatch: pytest.MonkeyPatch) -> list[MutableMapping[str, Any]]:
    """The ``provider_call`` log lines the chain writes while the test runs.

    ``structlog.testing.capture_logs`` cannot see a logger that ``configure_logging`` has
    cached on first use (an earlier test's app or worker may have), so the call log's own
    logger is swapped for a capturing one.
    """
    capture = LogCapture()
    monkeypatch.setattr(call_log, "log", structlog.wrap_logger(None, processors=[capture]))
    return capture.entries
