"""How a statement reaches the database's planner: with its constants written into its SQL
(`constants_inline`), and on PostgreSQL planned once, as lookups (`plan_once_as_lookups`). Used
by the caseload, the request the coaches' phones send most."""

from __future__ import annotations

import sqlalchemy as sa


def constants_inline(statement: sa.Select, *, keep: set[str], dialect: sa.Dialect) -> sa.Select:
    """`statement` with every value it was built with (an enum member, a list for IN, a number)
    written into its SQL as `dialect` writes literals, and only the parameters named in `keep`
    left as parameters. The text is the same at every execution, so the driver's prepared
    statement still serves it; and a plan made for any values of the parameters
    (`plan_once_as_lookups`) still sees which status, kind or direction each condition asks for,
    and which partial index answers it.

    Written once, here, not at each execution (SQLAlchemy's `render_literal_execute` renders them
    into the cached SQL every time: a twentieth of a caseload read's CPU). A value whose literal
    holds a `%` stays a parameter (drivers with `%s` placeholders escape it differently), and so
    does an empty IN list (SQLAlchemy writes it as a condition that is never true, not as `()`)."""
    compiler = dialect.statement_compiler(dialect, None)

    def literal(value, type_) -> str:
        return compiler.render_literal_value(value, type_)

    def inline(element):
        if not isinstance(element, sa.BindParameter) or element.key in keep or element.value is None:
            return None
        if element.expanding and not element.value:
            return None  # an empty IN list: SQLAlchemy writes it as a condition, not as `()`
        text = (f"({', '.join(literal(v, element.type) for v in element.value)})" if element.expanding
                else literal(element.value, element.type))
        return None if "%" in text else sa.literal_column(text, element.type)
    return sa.sql.visitors.replacement_traverse(statement, {}, inline)


def plan_once_as_lookups(connection: sa.Connection) -> None:
    """On PostgreSQL, from here to the end of the transaction: run prepared statements on the
    plan PostgreSQL made once for any values of their parameters, instead of planning them again
    for each execution's values; and join by index lookups, not by hashing or merging tables.

    For a statement that is planned at length (a dozen subqueries), whose best plan does not
    depend on its values, and that reads a few dozen rows and looks up what goes with each: the
    caseload's was planned on every request (0.8-1.1 ms of the server's CPU, as long as running
    it), and its plan made for any coach hashed every open episode's last contact (half of its
    0.95 ms at 6,000 open episodes, and growing with them) where 60 lookups do.

    The settings end with the transaction, committed or not (one statement, `set_config(…,
    is_local)`; setting them back after the statement was another round trip on every request,
    3 % of the caseload's throughput). But a statement the driver prepares while they hold (on
    its sixth execution on a connection) keeps the plan made under them for that connection's
    life: call it only where nothing but such statements, or inserts (which have no plan to
    choose), follow in the transaction — the caseload runs its statement last but for its audit
    event."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_LOOKUPS_PLANNED_ONCE)


_LOOKUPS_PLANNED_ONCE = ("SELECT set_config('plan_cache_mode', 'force_generic_plan', true), "
                         "set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)")
