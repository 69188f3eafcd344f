"""The sync tests run on an app whose commits are real.

A sync position is a transaction id on PostgreSQL, and the sync only reads what transactions
that have finished wrote: inside the suite's one rolled-back transaction per test, nothing
would ever be readable. So this package has a database of its own (per module) and lets the
app commit; each test makes its own users, so tests stay apart by scope.
"""

from __future__ import annotations

import pytest

from tests.cases.conftest import clinic, nurse, open_episode, register  # noqa: F401 - shared fixtures
from tests.handoffs.conftest import send  # noqa: F401 - shared fixture
from tests.support.databases import committing_app


@pytest.fixture(scope="module")
def app(database_url, tmp_path_factory):
    with committing_app(database_url, tmp_path_factory.mktemp("sync")) as app:
        yield app


@pytest.fixture(autouse=True)
def _rolled_back_transaction():
    """Overrides the suite's rolled-back transaction: commits are real here."""
    yield
