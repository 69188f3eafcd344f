"""Test harness: one app and one migrated database per session, a rolled-back transaction per test.

The database is SQLite in a temporary file, or PostgreSQL when `TEST_DATABASE_URL` is set
(`.ci/run` does both). Its schema comes from the migrations, as in production. Each test runs
inside a transaction on one connection; the app's commits become savepoint releases, and the
transaction is rolled back at the end, so tests never see each other's rows.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid

import pytest
import sqlalchemy as sa
from flask import current_app
from flask_migrate import upgrade
from flask_sqlalchemy.session import Session as FlaskSession

from backend import create_app, schemas
from backend.audit import outbox as audit_outbox
from backend.audit import service as audit_service
from backend.auth.access import public, signed_in
from backend.auth.models import Role
from backend.config import TestConfig
from backend.extensions import db
from tests.support import ApiClient, JsonLogCapture, make_user

pytest_plugins = ["tests.support.databases"]

#: Every answer the suite receives is also dumped by marshmallow itself and compared.
schemas.check_dumps = True

#: Stands for patient data inside an exception message; it must reach no response and no log.
LEAK_SENTINEL = "Jane Roe +15550100"
TEST_PATIENT = uuid.UUID("00000000-0000-4000-8000-00000000beef")


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(TestConfig(database_url))

    @public
    def boom():  # an unexpected failure, to test the 500 answer
        raise RuntimeError(LEAK_SENTINEL)

    @public
    def busy():  # the database refused for a conflict: a deadlock, a lock held too long
        raise sa.exc.OperationalError("UPDATE …", {}, sqlite3.OperationalError("database is locked"))

    @signed_in
    def patient_read():  # stands for a view that returns a patient's data
        audit_service.record("patient.read", resource_type="patient", resource_id=TEST_PATIENT,
                             patient_ids=[TEST_PATIENT])
        return {"patient": str(TEST_PATIENT)}, 201

    app.add_url_rule("/_test/patient-read", view_func=patient_read, methods=["POST"])
    app.add_url_rule("/_test/boom", view_func=boom, methods=["GET"])
    app.add_url_rule("/_test/busy", view_func=busy, methods=["GET"])
    # The audit outbox is a second file, which the rolled-back transaction of each test cannot
    # cover: here every event goes into the trail. tests/audit/test_outbox.py and every test that
    # starts the Procfile's processes or a committing app run with the outbox.
    app.extensions[audit_outbox.EXTENSION] = None
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
    """Bind the test app's sessions to one connection whose transaction is rolled back.

    Other apps a test builds (a fresh database, a broken one) keep their own engines.
    """
    with app.app_context():
        connection = db.engine.connect()
    transaction = connection.begin()

    class BoundToTestTransaction(FlaskSession):
        def get_bind(self, *args, **kwargs):
            if current_app._get_current_object() is app:
                return connection
            return super().get_bind(*args, **kwargs)

    original = db.session
    db.session = db._make_scoped_session({"class_": BoundToTestTransaction,
                                          "join_transaction_mode": "create_savepoint"})
    try:
        yield connection
    finally:
        db.session = original
        transaction.rollback()
        connection.close()


@pytest.fixture
def live_app(fresh_database_url):
    """An app on its own migrated database whose commits are real, for tests of concurrency
    (threads each get their own connection, as gunicorn workers would)."""
    app = create_app(TestConfig(fresh_database_url))
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()
        if audit_outbox.engine() is not None:
            audit_outbox.engine().dispose()


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


def pytest_addoption(parser):
    parser.addoption("--update-examples", action="store_true",
                     help="re-record the answers in mobile_api_spec/examples.json (tests/test_examples.py)")


def pytest_collection_modifyitems(config, items):
    """Tests marked `once` run with the SQLite suite only (see the marker in pyproject.toml)."""
    if os.environ.get("TEST_DATABASE_URL"):
        skip = pytest.mark.skip(reason="runs once, with the SQLite suite (marked `once`)")
        for item in items:
            if item.get_closest_marker("once"):
                item.add_marker(skip)


def pytest_report_header(config):
    url = os.environ.get("TEST_DATABASE_URL")
    return f"database: {'PostgreSQL (TEST_DATABASE_URL)' if url else 'SQLite (temporary file)'}"
