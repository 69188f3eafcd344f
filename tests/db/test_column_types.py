"""The column types every model reads through: timestamps come back aware and in UTC, ids as
UUIDs, on either database."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from backend.database import RecurringUuid, UTCDateTime
from backend.extensions import db

UTC = dt.timezone.utc


def _read_from_sqlite_text(text):
    dialect = sqlite.dialect()
    return UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)(text)


@pytest.mark.parametrize(("text", "instant"), [
    ("2026-12-04 03:49:31.082293", dt.datetime(2026, 12, 4, 3, 49, 31, 82293, tzinfo=UTC)),
    ("2026-12-04 03:49:31", dt.datetime(2026, 12, 4, 3, 49, 31, tzinfo=UTC)),
    ("2026-12-04 03:49:31.5", dt.datetime(2026, 12, 4, 3, 49, 31, 500000, tzinfo=UTC)),
    ("2026-12-04 05:49:31.000000+02:00", dt.datetime(2026, 12, 4, 3, 49, 31, tzinfo=UTC)),
    # as long as the usual forms (19 and 26 characters), but with an offset
    ("2026-12-04 08:49:31.123+05", dt.datetime(2026, 12, 4, 3, 49, 31, 123000, tzinfo=UTC)),
    ("2026-12-04T03:49:31.08234Z", dt.datetime(2026, 12, 4, 3, 49, 31, 82340, tzinfo=UTC)),
    ("2026-12-04 03:49-05", dt.datetime(2026, 12, 4, 8, 49, tzinfo=UTC)),
])
def test_a_timestamp_sqlite_kept_as_text_is_read_as_that_instant_in_utc(text, instant):
    moment = _read_from_sqlite_text(text)
    assert moment == instant
    assert moment.utcoffset() == dt.timedelta(0)


def test_a_missing_timestamp_is_read_as_none():
    assert _read_from_sqlite_text(None) is None


def test_a_timestamp_written_is_read_back_the_same_instant_in_utc(ctx):
    east = dt.timezone(dt.timedelta(hours=5, minutes=30))
    written = dt.datetime(2026, 3, 1, 9, 15, 30, 123456, tzinfo=east)
    read = db.session.scalar(sa.select(sa.bindparam("at", written, type_=UTCDateTime())))
    assert read == written
    assert read.tzinfo is UTC  # as written by the database (PostgreSQL's sessions are in UTC): nothing converted
    on_the_second = written.replace(microsecond=0)
    assert db.session.scalar(sa.select(sa.bindparam("at", on_the_second, type_=UTCDateTime()))) == on_the_second


def test_an_id_read_through_the_recurring_cache_is_the_uuid_that_was_written(ctx):
    ids = [uuid.uuid4(), uuid.uuid4()]
    for _ in range(2):  # the second time from the cache, on SQLite
        read = [db.session.scalar(sa.select(sa.type_coerce(sa.bindparam("id", i, type_=sa.Uuid()), RecurringUuid())))
                for i in ids]
        assert read == ids
        assert all(type(r) is uuid.UUID for r in read)
    assert db.session.scalar(sa.select(sa.type_coerce(sa.null(), RecurringUuid()))) is None


def test_a_list_of_ids_is_read_back_as_written_and_as_rows(ctx):
    from backend.database import UuidList, elements_of

    ids = [uuid.uuid4() for _ in range(3)]
    listed = sa.bindparam("ids", ids, type_=UuidList())
    assert db.session.scalar(sa.select(listed)) == ids
    assert db.session.scalar(sa.select(sa.bindparam("none", [], type_=UuidList()))) == []
    assert db.session.scalar(sa.select(sa.bindparam("none", [], type_=UuidList()).is_(None)))  # stored as NULL
    rows = elements_of(sa.cast(listed, UuidList()), db.engine.dialect)
    assert sorted(db.session.scalars(sa.select(rows.c.value))) == sorted(ids)
