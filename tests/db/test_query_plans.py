"""Constants written into a statement's SQL once read exactly as SQLAlchemy writes them at each
execution, on both databases' dialects."""

from __future__ import annotations

import enum

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from backend.query_plans import constants_inline


class Colour(enum.Enum):
    RED = "red"
    DARK_BLUE = "dark blue"


COLOUR = sa.Enum(Colour, native_enum=False, values_callable=lambda members: [m.value for m in members])
TABLE = sa.table("things", sa.column("status", sa.String), sa.column("flag", sa.Boolean),
                 sa.column("size", sa.Integer), sa.column("colour", COLOUR), sa.column("label", sa.String))
STATEMENT = (sa.select(TABLE.c.status)
             .where(TABLE.c.status == "open", TABLE.c.status.in_(["sent", "it's accepted"]), TABLE.c.flag == True,  # noqa: E712
                    TABLE.c.colour == Colour.DARK_BLUE, TABLE.c.size > 3, TABLE.c.size == sa.bindparam("size", 5))
             .order_by(TABLE.c.size).limit(1))


def _rendered_at_execution(statement, dialect, keep):
    """SQLAlchemy's own way: each value a literal rendered into the SQL when it is executed."""
    def inline(element):
        if isinstance(element, sa.BindParameter) and element.key not in keep and element.value is not None:
            return element.render_literal_execute()
        return None
    return sa.sql.visitors.replacement_traverse(statement, {}, inline).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}).string


@pytest.mark.parametrize("dialect", [psycopg.dialect(), sqlite.dialect()], ids=["postgresql", "sqlite"])
def test_constants_written_once_read_as_sqlalchemy_writes_them_at_each_execution(dialect):
    inlined = constants_inline(STATEMENT, keep={"size"}, dialect=dialect).compile(dialect=dialect)
    assert inlined.string == _rendered_at_execution(STATEMENT, dialect, {"size"})
    assert "'it''s accepted'" in inlined.string and "'dark blue'" in inlined.string
    values = inlined.construct_params()
    assert values["size"] == 5  # kept
    assert not {"open", "sent", "it's accepted", Colour.DARK_BLUE, True, 3} & set(values.values())


@pytest.mark.parametrize("dialect", [psycopg.dialect(), sqlite.dialect()], ids=["postgresql", "sqlite"])
def test_a_constant_holding_a_percent_sign_stays_a_parameter(dialect):
    statement = sa.select(TABLE.c.status).where(TABLE.c.label.like("50%"), TABLE.c.status == "open")
    inlined = constants_inline(statement, keep=set(), dialect=dialect).compile(dialect=dialect)
    assert "'open'" in inlined.string and "50%" not in inlined.string
    assert list(inlined.params.values()) == ["50%"]


@pytest.mark.parametrize("dialect", [psycopg.dialect(), sqlite.dialect()], ids=["postgresql", "sqlite"])
def test_an_empty_in_list_stays_a_parameter_that_sqlalchemy_writes_as_never_true(dialect):
    statement = sa.select(TABLE.c.status).where(TABLE.c.status.in_([]), TABLE.c.size == 3)
    rendered = constants_inline(statement, keep=set(), dialect=dialect).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}).string
    assert "IN ()" not in rendered and rendered == _rendered_at_execution(statement, dialect, set())
