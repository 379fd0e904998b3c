"""The jobs API in process that the jobs test modules share: an API per database with two
tiers of its own, no worker, so jobs stay queued; helpers to submit jobs and read the queues.

The fixtures are imported by each module that uses them (``api``, ``auth``, ``make_api``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, open_api
from tests_support import database_url_for, queued_job_ids

MESSAGES = [{"role": "user", "content": "Summarise the attached memo."}]
TIERS = {"tier": ["emu-a", "emu-b"], "other_tier": ["emu-b"]}


class Api(ApiHarness):
    """The jobs API, with helpers to submit jobs and read the queues."""

    def body(self, **fields: Any) -> dict[str, Any]:
        request = {"messages": MESSAGES, **fields.pop("request", {})}
        return {"tier": self.tier, "request": request, **fields}

    def submit(self, headers: dict[str, str], **fields: Any) -> Any:
        return self.client.post("/v1/jobs", json=self.body(**fields), headers=headers)

    def queued_ids(self, tier: str, priority: str = "live") -> list[str]:
        """Job ids on the tier's queue, every priority level."""
        return queued_job_ids(self.redis, f"tier.{tier}.{priority}")


@contextmanager
def jobs_api(tmp: Path, redis_url: str, database_url: str, **overrides: Any) -> Iterator[Api]:
    """The API on two fresh tiers: one on emu-a and emu-b, the other on emu-b."""
    with open_api(Api, tmp, redis_url, database_url, TIERS, **overrides) as api:
        yield api


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Api]:
    """One API per database for the module; every test makes its own tenants."""
    tmp = tmp_path_factory.mktemp("api")
    database_url = database_url_for(request, tmp)
    with jobs_api(tmp, redis_url, database_url) as opened:
        yield opened


@pytest.fixture
def make_api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Callable[..., Api]]:
    """Builds an API with settings overrides, on the parametrised database."""
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(
            jobs_api(tmp_path, redis_url, database_url, **overrides)
        )


@pytest.fixture
def auth(api: Api) -> dict[str, str]:
    return api.tenant()
