"""The Celery app: queues from config and the design's reliability settings, checked at start."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from tests_support import make_test_settings

from workers.celery_app import _assert_visibility_timeout, broker_visibility_timeout, create_celery


def test_queues_come_from_config_one_per_tier_and_priority(tmp_path: Path, redis_url: str) -> None:
    settings = make_test_settings(tmp_path, redis_url)
    app = create_celery(settings)
    names = {queue.name for queue in app.conf.task_queues}
    for tier in settings.tiers:
        assert {f"tier.{tier}.live", f"tier.{tier}.batch"} <= names
    assert f"{settings.key_prefix}.maintenance" in names


def test_reliability_settings_follow_the_design(tmp_path: Path, redis_url: str) -> None:
    app = create_celery(make_test_settings(tmp_path, redis_url))
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    soft, hard = conf.task_soft_time_limit, conf.task_time_limit
    assert soft < hard < conf.broker_transport_options["visibility_timeout"]


def test_broker_channel_uses_the_configured_visibility_timeout(tmp_path: Path, redis_url: str) -> None:
    settings = make_test_settings(tmp_path, redis_url, visibility_timeout_s=4321)
    assert broker_visibility_timeout(create_celery(settings)) == 4321


def test_startup_check_refuses_a_visibility_timeout_that_did_not_take(tmp_path: Path, redis_url: str) -> None:
    settings = make_test_settings(tmp_path, redis_url)
    app = create_celery(settings)
    app.conf.broker_transport_options = {"visibility_timeout": 60}  # as if the option were lost
    with pytest.raises(RuntimeError, match="visibility timeout"):
        _assert_visibility_timeout(sender=SimpleNamespace(app=app))
    _assert_visibility_timeout(sender=SimpleNamespace(app=create_celery(settings)))  # the real one passes


def test_settings_refuse_limits_in_the_wrong_order(tmp_path: Path, redis_url: str) -> None:
    with pytest.raises(ValueError, match="task_soft_time_limit_s < task_time_limit_s"):
        make_test_settings(tmp_path, redis_url, task_soft_time_limit_s=200, task_time_limit_s=150)
    with pytest.raises(ValueError, match="lease_s must be at least two lease_heartbeat_s"):
        make_test_settings(tmp_path, redis_url, lease_s=9, lease_heartbeat_s=5)
