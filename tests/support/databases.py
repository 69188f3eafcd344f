"""Which database the suite runs on, and fresh empty databases for process-level tests.

`TEST_DATABASE_URL` selects PostgreSQL (`postgresql+psycopg://…`); without it the suite uses
a SQLite file in a temporary directory. Never point it at a database whose data you want.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest
import sqlalchemy as sa


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@contextlib.contextmanager
def fresh_database(database_url: str, directory):
    """The URL of an empty database of the same kind as `database_url`, dropped afterwards."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{directory / 'fresh.db'}"
        return
    name = f"bridgeline_fresh_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def fresh_database_url(database_url, tmp_path):
    """An empty database of the same kind as the suite's, dropped afterwards."""
    with fresh_database(database_url, tmp_path) as url:
        yield url


@contextlib.contextmanager
def committing_app(database_url: str, directory, **config):
    """An app on a fresh migrated database whose commits are real (for tests that need
    finished transactions, such as the sync's), disposed of afterwards."""
    from flask_migrate import upgrade

    from backend import create_app
    from backend.audit import outbox
    from backend.config import TestConfig
    from backend.extensions import db

    with fresh_database(database_url, directory) as url:
        app = create_app(TestConfig(url))
        app.config.update(config)
        with app.app_context():
            upgrade()
        yield app
        with app.app_context():
            db.engine.dispose()
            if outbox.engine() is not None:
                outbox.engine().dispose()
