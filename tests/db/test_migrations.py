"""Migrations: the only way the schema is made, and safe on a database that holds data."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from backend.database import check_foreign_keys, foreign_keys_off_for_migration
from backend.extensions import db
from tests.support import make_user


def test_the_models_match_the_migrations(live_app):
    """A model change without its migration fails here (`flask db migrate` drafts it)."""
    result = live_app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_sqlite_foreign_keys_are_enforced(app, ctx):
    with pytest.raises(sa.exc.IntegrityError):
        with db.session.begin_nested():
            db.session.execute(sa.text(
                "INSERT INTO device_sessions (id, user_id, device_name, token_hash, created_at, last_seen_at, "
                "expires_at, idle_timeout_seconds) VALUES ('00000000000000000000000000000001', "
                "'00000000000000000000000000000002', 'x', 'h', '2026-01-01', '2026-01-01', '2026-01-02', 60)"
                if db.engine.dialect.name == "sqlite" else
                "INSERT INTO device_sessions (id, user_id, device_name, token_hash, created_at, last_seen_at, "
                "expires_at, idle_timeout_seconds) VALUES (gen_random_uuid(), gen_random_uuid(), 'x', 'h', now(), "
                "now(), now(), 60)"))


def test_a_batch_migration_rebuilds_a_referenced_table_without_losing_rows(live_app):
    user = make_user(live_app)
    live_app.test_client().post("/api/v1/auth/tokens", json={"username": user.username, "password": user.password})
    with live_app.app_context():
        engine = db.engine
        with engine.connect() as connection, foreign_keys_off_for_migration(connection):
            with connection.begin():
                operations = Operations(MigrationContext.configure(connection))
                # SQLite rebuilds the table (copy, drop, rename); PostgreSQL alters it in place.
                recreate = "always" if engine.dialect.name == "sqlite" else "auto"
                with operations.batch_alter_table("users", recreate=recreate) as batch:
                    batch.add_column(sa.Column("nickname", sa.String(20)))
                check_foreign_keys(connection)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM device_sessions")).scalar() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1 \
                if engine.dialect.name == "sqlite" else True


def test_a_migration_that_orphans_rows_is_refused(live_app):
    user = make_user(live_app)
    live_app.test_client().post("/api/v1/auth/tokens", json={"username": user.username, "password": user.password})
    with live_app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("PostgreSQL enforces foreign keys inside every migration")
        with db.engine.connect() as connection, foreign_keys_off_for_migration(connection):
            with pytest.raises(RuntimeError, match="device_sessions"):
                with connection.begin():
                    connection.exec_driver_sql("DELETE FROM users")
                    check_foreign_keys(connection)
            assert connection.exec_driver_sql("SELECT count(*) FROM users").scalar() == 1
