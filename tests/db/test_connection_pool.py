"""The pool lends live connections: one that sat idle is checked before use, one back from use
within the second is lent as it is (no round trip on a busy service's every request)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from backend.database import ping_when_idle


@pytest.fixture
def engine(fresh_database_url):
    engine = sa.create_engine(fresh_database_url)
    yield engine
    engine.dispose()


def _used_then_killed(engine: sa.Engine) -> None:
    """Use a pooled connection, then close it under the pool's feet (as a server restart would)."""
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT 1")) == 1
        dbapi_connection = connection.connection.dbapi_connection
    dbapi_connection.close()


def test_a_pooled_connection_that_died_while_idle_is_replaced_before_it_is_lent(engine):
    ping_when_idle(engine, after=0.05)
    _used_then_killed(engine)
    time.sleep(0.1)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT 2")) == 2


def test_a_connection_back_from_use_within_the_idle_time_is_lent_without_a_round_trip(engine):
    ping_when_idle(engine, after=60)
    _used_then_killed(engine)
    with pytest.raises(sa.exc.DBAPIError), engine.connect() as connection:
        connection.scalar(sa.text("SELECT 2"))  # the dead connection itself: nothing checked it
    with engine.connect() as connection:  # the failure invalidated it: the next one is new
        assert connection.scalar(sa.text("SELECT 3")) == 3
