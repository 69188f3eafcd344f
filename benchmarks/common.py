"""What the benchmarks share: bulk inserts for seeding, and fresh planner statistics after."""

from __future__ import annotations

import os
import tempfile

import sqlalchemy as sa
from flask_migrate import upgrade

from backend import create_app, unit_of_work
from backend.auth import service as auth_service
from backend.auth.models import Role
from backend.config import Config
from backend.extensions import db

#: Every benchmark user's password.
PASSWORD = "benchmark passphrase"


def make_staff(coaches: int):
    """An ED nurse `bench.nurse` and coaches `bench.coach0…`, committed; (nurse, [coaches])."""
    nurse = auth_service.create_user(username="bench.nurse", display_name="Nurse", role=Role.ED_NURSE,
                                     password=PASSWORD)
    staff = [auth_service.create_user(username=f"bench.coach{i}", display_name=f"Coach {i}", role=Role.COACH,
                                      password=PASSWORD) for i in range(coaches)]
    unit_of_work.commit()
    return nurse, staff


def insert_rows(model, rows: list[dict]) -> None:
    if rows:
        db.session.execute(sa.insert(model), rows)


class Rows:
    """Rows to bulk-insert, per model, written 5,000 at a time in the order the models were given
    (parents before children)."""

    def __init__(self, *models) -> None:
        self.rows: dict[type, list[dict]] = {model: [] for model in models}

    def add(self, model, row: dict) -> None:
        self.rows[model].append(row)
        if len(self.rows[model]) >= 5_000:
            self.flush()

    def flush(self) -> None:
        for model, rows in self.rows.items():
            insert_rows(model, rows)
            rows.clear()


def analyze() -> None:
    """Commit the seed and refresh the planner's statistics, as a live database would have them."""
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()


class Statements:
    """Counts SQL statements: `sa.event.listen(engine, "before_cursor_execute", counter)`."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args) -> None:
        self.count += 1


def migrated_app(database_url: str | None, sqlite_name: str):
    """The app on `database_url` (an empty PostgreSQL database), or on a new SQLite file in a
    temporary directory; migrated, with cheap password hashing and quiet logs."""
    url = database_url or f"sqlite:///{tempfile.mkdtemp()}/{sqlite_name}"
    os.environ.update({"DATABASE_URL": url, "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST_KIB": "64",
                       "LOG_LEVEL": "WARNING"})
    app = create_app(Config())
    with app.app_context():
        upgrade()
    return app
