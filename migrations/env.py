"""Alembic environment: runs migrations on the app's own engine (Flask-Migrate).

The schema is created only by these migrations (`flask --app backend db upgrade`, the
Procfile's release step). SQLite uses batch mode; the app's connection setup makes its DDL
transactional, so a failed migration leaves nothing half-applied.
"""

import logging

from alembic import context
from flask import current_app

from backend.database import check_foreign_keys, foreign_keys_off_for_migration

log = logging.getLogger("alembic.env")
config = context.config
migrate_ext = current_app.extensions["migrate"]


def _skip_empty_autogenerate(context, revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        log.info("no schema changes detected")


def _render_item(type_, obj, autogen_context):
    """Write the app's UTC timestamp type as the plain column type it wraps."""
    from backend.database import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online() -> None:
    conf_args = dict(migrate_ext.configure_args)
    conf_args.setdefault("process_revision_directives", _skip_empty_autogenerate)
    conf_args.setdefault("render_item", _render_item)
    with migrate_ext.db.engine.connect() as connection, foreign_keys_off_for_migration(connection):
        # Both backends run DDL inside the transaction (see backend.database for SQLite).
        context.configure(connection=connection, target_metadata=migrate_ext.db.metadata,
                          transactional_ddl=True, **conf_args)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Building an index on a big table takes as long as it takes: no statement limit.
                connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
            context.run_migrations()
            check_foreign_keys(connection)


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `flask db upgrade`")
run_migrations_online()
