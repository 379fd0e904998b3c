"""Each job's end is counted once, by whichever path ended it: a worker's announcement, a
batch's bulk cancel, and a batch's lines submitted and ended together."""

from __future__ import annotations

import batches_api_support
from batches_api_support import Api
from prometheus_client import REGISTRY

api, auth = batches_api_support.api, batches_api_support.auth  # the shared fixtures, by name


def ended(tier: str, status: str, code: str = "") -> float:
    labels = {"tier": tier, "priority": "batch", "status": status, "error_code": code}
    return REGISTRY.get_sample_value("switchyard_jobs_ended_total", labels) or 0.0


def durations(tier: str, status: str) -> float:
    labels = {"tier": tier, "priority": "batch", "status": status}
    return REGISTRY.get_sample_value("switchyard_job_duration_seconds_count", labels) or 0.0


def test_announced_ends_and_a_bulk_cancel_each_count_every_job_once(api: Api, auth: dict[str, str]) -> None:
    before = (ended(api.tier, "succeeded"), ended(api.tier, "failed", "provider_bad_request"))
    canceled_before = ended(api.tier, "canceled", "batch_cancelled")
    durations_before = sum(durations(api.tier, status) for status in ("succeeded", "failed", "canceled"))
    batch = api.create(auth, 5)
    jobs = api.jobs(batch["id"])
    api.run(jobs[0].id)
    api.run(jobs[1].id, succeed=False)
    assert api.client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth).status_code == 200

    assert (ended(api.tier, "succeeded"), ended(api.tier, "failed", "provider_bad_request")) == (
        before[0] + 1,
        before[1] + 1,
    )
    assert ended(api.tier, "canceled", "batch_cancelled") == canceled_before + 3
    assert sum(durations(api.tier, s) for s in ("succeeded", "failed", "canceled")) == durations_before + 5
    # A second cancel finds nothing queued, so counts nothing.
    api.client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth)
    assert ended(api.tier, "canceled", "batch_cancelled") == canceled_before + 3


def test_a_batchs_lines_count_as_submissions(api: Api, auth: dict[str, str]) -> None:
    labels = {"tier": api.tier, "priority": "batch"}
    submitted = REGISTRY.get_sample_value("switchyard_jobs_submitted_total", labels) or 0.0
    accepted = REGISTRY.get_sample_value("switchyard_jobs_accepted_total", labels) or 0.0
    api.create(auth, 4)
    assert REGISTRY.get_sample_value("switchyard_jobs_submitted_total", labels) == submitted + 4
    assert REGISTRY.get_sample_value("switchyard_jobs_accepted_total", labels) == accepted + 4
