"""Test harness: one app and one migrated database per session, a rolled-back transaction per test.

The database is SQLite in a temporary file, or PostgreSQL when `TEST_DATABASE_URL` is set
(`.ci/run` does both). Its schema comes from the migrations, as in production. Each test runs
inside a transaction on one connection; the app's commits become savepoint releases, and the
transaction is rolled back at the end, so tests never see each other's rows.
"""

from __future__ import annotations

import logging
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy.orm import scoped_session, sessionmaker

from backend import create_app
from backend.auth.access import public
from backend.auth.models import Role
from backend.config import TestConfig
from backend.extensions import db
from tests.support import ApiClient, JsonLogCapture, make_user

pytest_plugins = ["tests.support.databases"]

#: Stands for patient data inside an exception message; it must reach no response and no log.
LEAK_SENTINEL = "Jane Roe +15550100"


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(TestConfig(database_url))

    @public
    def boom():  # an unexpected failure, to test the 500 answer
        raise RuntimeError(LEAK_SENTINEL)

    app.add_url_rule("/_test/boom", view_func=boom, methods=["GET"])
    with app.app_context():
        _reset_schema(db.engine)
        upgrade()
    return app


def _reset_schema(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
        else:
            meta = sa.MetaData()
            meta.reflect(connection)
            meta.drop_all(connection)
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


@pytest.fixture(autouse=True)
def _rolled_back_transaction(app):
    """Bind every app-context session to one connection whose transaction is rolled back."""
    with app.app_context():
        connection = db.engine.connect()
    transaction = connection.begin()
    original = db.session
    db.session = scoped_session(
        sessionmaker(bind=connection, join_transaction_mode="create_savepoint"), scopefunc=_app_ctx_id
    )
    try:
        yield connection
    finally:
        db.session = original
        transaction.rollback()
        connection.close()


@pytest.fixture
def ctx(app):
    """An application context, for tests that call services or read the database."""
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_client(app):
    """`make_client(role)` → an ApiClient signed in as a new user with that role."""

    def factory(role: Role | str = Role.COACH, **user_fields) -> ApiClient:
        user = make_user(app, role=Role(role), **user_fields)
        api = ApiClient(app.test_client())
        api.sign_in(user.username, user.password)
        api.user = user
        return api

    return factory


@pytest.fixture
def admin(make_client) -> ApiClient:
    return make_client(Role.ADMIN)


@pytest.fixture
def coach(make_client) -> ApiClient:
    return make_client(Role.COACH)


@pytest.fixture
def anonymous(app) -> ApiClient:
    return ApiClient(app.test_client())



@pytest.fixture
def json_log():
    """Everything logged during the test, as the production JSON formatter writes it."""
    capture = JsonLogCapture()
    root = logging.getLogger()
    root.addHandler(capture.handler)
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)
