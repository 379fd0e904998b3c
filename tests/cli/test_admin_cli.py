"""``switchyard tenants`` and ``switchyard keys`` go through the admin API's code: the same
checks, and the same audit entries with no actor key (the host's CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from tests_support import TEST_CONFIG
from typer.testing import CliRunner

from api.keys import find_principal
from cli.bootstrap import ensure_admin_key
from cli.main import app
from schemas.settings import load_settings
from schemas.spend_tables import AuditEntry
from schemas.tables import ApiKey, Tenant, utcnow
from workers.db import make_engine
from workers.migrate import upgrade

runner = CliRunner()
NEW_COMMANDS = [["tenants", "disable"], ["tenants", "enable"], ["keys", "list"], ["keys", "revoke"],
                ["keys", "rotate"], ["keys", "platform"], ["keys", "admin"]]  # fmt: skip


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Path:
    monkeypatch.setenv("SWITCHYARD_CONFIG_FILE", str(TEST_CONFIG))
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", redis_url)
    monkeypatch.setenv("SWITCHYARD_KEY_PREFIX", f"sytest{tmp_path.name[-8:]}")
    monkeypatch.setenv("SWITCHYARD_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", "")
    upgrade(load_settings())
    return tmp_path


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output.strip()


def audit_rows() -> list[AuditEntry]:
    with Session(make_engine(load_settings())) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all())


@pytest.mark.parametrize("command", NEW_COMMANDS, ids=" ".join)
def test_the_new_commands_explain_themselves(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_tenant_commands_change_tenants_and_write_audit_entries_without_an_actor(cli_env: Path) -> None:
    tenant_id = run("tenants", "create", "acme", "--rpm", "30", "--timezone", "Asia/Tokyo")
    run("tenants", "set-limits", "acme", "--max-running", "4")
    assert "disabled" in run("tenants", "disable", "acme")
    listed = run("tenants", "list")
    assert (
        tenant_id in listed and "Asia/Tokyo" in listed and "disabled" in listed and "max_running=4" in listed
    )
    run("tenants", "enable", tenant_id)

    with Session(make_engine(load_settings())) as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None and tenant.disabled_at is None and tenant.rpm_limit == 30
    rows = audit_rows()
    assert [row.action for row in rows] == [
        "tenant.created",
        "tenant.updated",
        "tenant.disabled",
        "tenant.enabled",
    ]
    assert {row.actor_key_id for row in rows} == {None} and {row.address for row in rows} == {None}
    bad = runner.invoke(app, ["tenants", "create", "other", "--timezone", "Nowhere/Land"])
    assert bad.exit_code != 0 and "time zone" in bad.output
    taken = runner.invoke(app, ["tenants", "create", "acme"])
    assert taken.exit_code != 0 and "exists already" in taken.output


def test_key_commands_create_list_rotate_and_revoke(cli_env: Path) -> None:
    run("tenants", "create", "acme")
    secret = run("keys", "create", "acme", "--scope", "submit", "--name", "ci", "--expires-in", "3600")
    engine = make_engine(load_settings())
    with Session(engine) as session:
        key = session.exec(select(ApiKey).where(ApiKey.name == "ci")).one()
    assert key.expires_at is not None and key.expires_at > utcnow()
    assert key.id in run("keys", "list", "acme")

    rotated = run("keys", "rotate", key.id, "--grace", "0")
    with Session(engine) as session:
        old = find_principal(session, secret)
        assert old is not None and old.expired(utcnow())
    run("keys", "revoke", key.id)

    with Session(engine) as session:
        assert find_principal(session, rotated) is not None
        assert find_principal(session, secret) is None
    actions = [row.action for row in audit_rows() if row.target_type == "api_key"]
    assert actions == ["key.created", "key.rotated", "key.revoked"]
    assert {row.actor_key_id for row in audit_rows()} == {None}
    unknown_tier = runner.invoke(app, ["keys", "create", "acme", "--tier", "no-such-tier"])
    assert unknown_tier.exit_code != 0 and "no-such-tier" in unknown_tier.output


def test_platform_and_admin_keys(cli_env: Path) -> None:
    missing = runner.invoke(app, ["keys", "admin"])
    assert missing.exit_code != 0 and "switchyard up" in missing.output
    printed = run("keys", "platform")
    written = ensure_admin_key(load_settings())

    assert run("keys", "admin") == written != printed
    assert ensure_admin_key(load_settings()) == written  # kept while it works
    with Session(make_engine(load_settings())) as session:
        for secret in (printed, written):
            principal = find_principal(session, secret)
            assert principal is not None and principal.is_platform_admin
    assert [row.action for row in audit_rows()] == ["key.created", "key.created"]
