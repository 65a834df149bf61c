"""``xds db status`` and ``xds db upgrade`` as a subprocess, on SQLite and PostgreSQL: an older
schema is reported (exit 1) and upgraded to the head; a newer or foreign one is left alone."""

from __future__ import annotations

from sqlalchemy import text

from tests.ops.support import at_revision, run_xds
from xds.config import Settings
from xds.store.db import open_engine, schema_state


def _store(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


def test_status_exits_1_on_an_old_schema_and_upgrade_brings_it_to_head(
        fresh_settings: Settings) -> None:
    at_revision(fresh_settings, "0005")
    status = run_xds(["db", "status", *_store(fresh_settings)])
    assert status.returncode == 1, status.stdout + status.stderr
    assert "current: 0005" in status.stdout and "head: 0006" in status.stdout
    assert "run 'xds db upgrade'" in status.stdout

    upgrade = run_xds(["db", "upgrade", *_store(fresh_settings)])
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert "before: 0005" in upgrade.stdout and "after: 0006" in upgrade.stdout

    again = run_xds(["db", "status", *_store(fresh_settings)])
    assert again.returncode == 0, again.stdout + again.stderr
    assert "current: 0006" in again.stdout
    engine = open_engine(fresh_settings)
    try:
        assert schema_state(engine).is_current
        with engine.connect() as conn:  # what 0006 adds is there
            assert conn.execute(text("SELECT count(*) FROM audit_outbox")).scalar_one() == 0
    finally:
        engine.dispose()


def test_upgrade_at_the_head_changes_nothing(fresh_settings: Settings) -> None:
    at_revision(fresh_settings, "head")
    upgrade = run_xds(["db", "upgrade", *_store(fresh_settings)])
    assert upgrade.returncode == 0, upgrade.stderr
    assert "before: 0006" in upgrade.stdout and "already at the head revision" in upgrade.stdout


def test_status_of_an_empty_database_exits_1_and_upgrade_creates_the_schema(
        fresh_settings: Settings) -> None:
    status = run_xds(["db", "status", *_store(fresh_settings)])
    assert status.returncode == 1
    assert "current: none" in status.stdout and "empty" in status.stdout
    assert run_xds(["db", "upgrade", *_store(fresh_settings)]).returncode == 0
    assert run_xds(["db", "status", *_store(fresh_settings)]).returncode == 0


def test_a_revision_of_a_newer_version_is_reported_and_not_touched(
        fresh_settings: Settings) -> None:
    at_revision(fresh_settings, "head")
    engine = open_engine(fresh_settings)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        status = run_xds(["db", "status", *_store(fresh_settings)])
        upgrade = run_xds(["db", "upgrade", *_store(fresh_settings)])
        assert schema_state(engine).current == ("0099",)
    finally:
        engine.dispose()
    assert status.returncode == 1
    assert "revision 0099, which this version does not know" in status.stdout
    assert upgrade.returncode == 1
    assert "does not know" in upgrade.stderr


def test_tables_without_a_revision_are_not_taken_for_an_empty_database(
        fresh_settings: Settings) -> None:
    engine = open_engine(fresh_settings)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE someone_elses (id integer)"))
    finally:
        engine.dispose()
    status = run_xds(["db", "status", *_store(fresh_settings)])
    assert status.returncode == 1 and "not an xds database" in status.stdout
    upgrade = run_xds(["db", "upgrade", *_store(fresh_settings)])
    assert upgrade.returncode == 1 and "not an xds database" in upgrade.stderr
