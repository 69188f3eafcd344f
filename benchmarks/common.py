"""What the benchmarks share: bulk inserts for seeding, and fresh planner statistics after."""

from __future__ import annotations

import sqlalchemy as sa

from backend.extensions import db


def insert_rows(model, rows: list[dict]) -> None:
    if rows:
        db.session.execute(sa.insert(model), rows)


def analyze() -> None:
    """Commit the seed and refresh the planner's statistics, as a live database would have them."""
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
