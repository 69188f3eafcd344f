"""sync changes: the feed phones sync from, written by triggers on every synced table

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 18:10:39.628737

Triggers, not ORM events: bulk UPDATEs bypass the ORM, and a write that missed the feed would
never reach a phone. SQLite's batch migrations rebuild a table without its triggers: a later
migration that batch-alters one of these tables must create its triggers again
(tests/sync/test_feed.py fails if one is missing).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


#: table → (entity, id, episode, patient, the operations that feed it)
FEEDS = {
    "patients": ("patient", "NEW.id", "NULL", "NEW.id", ("UPDATE",)),
    "episodes": ("episode", "NEW.id", "NEW.id", "NULL", ("INSERT", "UPDATE")),
    "encounters": ("encounter", "NEW.id", "NEW.episode_id", "NULL", ("INSERT", "UPDATE")),
    "tasks": ("task", "NEW.id", "NEW.episode_id", "NULL", ("INSERT", "UPDATE")),
    "appointments": ("appointment", "NEW.id", "NEW.episode_id", "NULL", ("INSERT", "UPDATE")),
    "handoffs": ("handoff", "NEW.id", "NEW.episode_id", "NULL", ("INSERT", "UPDATE")),
    # A handoff's events (its steps and escalations) are part of the handoff.
    "handoff_events": ("handoff", "NEW.handoff_id", "(SELECT episode_id FROM handoffs WHERE id = NEW.handoff_id)",
                       "NULL", ("INSERT",)),
    "messages": ("message", "NEW.id", "NEW.episode_id", "NEW.patient_id", ("INSERT", "UPDATE")),
}


def _insert(table: str, operation: str) -> str:
    entity, record, episode, patient, _ = FEEDS[table]
    was = ("OLD.status", "OLD.level", "OLD.coach_id") if (table, operation) == ("episodes", "UPDATE") else ("NULL",) * 3
    return (f"INSERT INTO sync_changes (entity, entity_id, episode_id, patient_id, was_status, was_level, was_coach_id) "
            f"VALUES ('{entity}', {record}, {episode}, {patient}, {', '.join(was)});")


def _triggers():
    for table, (*_, operations) in FEEDS.items():
        for operation in operations:
            yield table, operation, f"sync_feed_{table}_{operation.lower()}"


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table('sync_changes',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('txid', sa.BigInteger(), nullable=False,
              server_default=sa.text('(pg_current_xact_id()::text::bigint)' if postgresql else '0')),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.Uuid(), nullable=False),
    sa.Column('episode_id', sa.Uuid(), nullable=True),
    sa.Column('patient_id', sa.Uuid(), nullable=True),
    sa.Column('was_status', sa.String(length=20), nullable=True),
    sa.Column('was_level', sa.String(length=40), nullable=True),
    sa.Column('was_coach_id', sa.Uuid(), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False,
              server_default=sa.text('now()' if postgresql else '(CURRENT_TIMESTAMP)')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_sync_changes')),
    sqlite_autoincrement=True
    )
    op.create_index('ix_sync_changes_changed_at', 'sync_changes', ['changed_at'], unique=False)
    op.create_index('ix_sync_changes_position', 'sync_changes', ['txid', 'seq'], unique=False)
    for table, operation, name in _triggers():
        if postgresql:
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                       f"BEGIN {_insert(table, operation)} RETURN NULL; END $$")
            op.execute(f"CREATE TRIGGER {name} AFTER {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")
        else:
            op.execute(f"CREATE TRIGGER {name} AFTER {operation} ON {table} BEGIN {_insert(table, operation)} END")


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, _, name in _triggers():
        op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_index('ix_sync_changes_position', table_name='sync_changes')
    op.drop_index('ix_sync_changes_changed_at', table_name='sync_changes')
    op.drop_table('sync_changes')
