"""continuity of treatment: discharge disposition, the naloxone log, medication supplies

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 13:10:00

`episodes.disposition` is added with a plain ALTER TABLE, never a batch rebuild: on SQLite a
rebuild of `episodes` would drop its sync triggers (see 0009). Episodes discharged before this
migration keep NULL, which the API shows as `unknown` (rewriting them would put every
discharged episode in the change feed at once).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


#: The new tables phones keep feed the change feed as 0009's do: table → (entity, operations).
FEEDS = {
    "naloxone_events": ("naloxone", ("INSERT", "UPDATE")),
    "medication_supplies": ("medication", ("INSERT", "UPDATE")),
}


REPORT_MS_COLUMNS = ('naloxone_trained', 'bridge_starts', 'bridge_ends', 'moud_continued')


def _feed_triggers(postgresql: bool):
    for table, (entity, operations) in FEEDS.items():
        for operation in operations:
            name = f"sync_feed_{table}_{operation.lower()}"
            insert = (f"INSERT INTO sync_changes (entity, entity_id, episode_id, patient_id, was_status, was_level, "
                      f"was_coach_id) VALUES ('{entity}', NEW.id, NEW.episode_id, NULL, NULL, NULL, NULL);")
            yield table, name, insert, operation


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column('episodes', sa.Column('disposition', sa.String(length=30), nullable=True))
    op.create_table('naloxone_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('episode_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recipient', sa.String(length=20), nullable=True),
    sa.Column('product', sa.String(length=20), nullable=True),
    sa.Column('doses', sa.Integer(), nullable=True),
    sa.Column('training_given', sa.Boolean(), nullable=True),
    sa.Column('setting', sa.String(length=30), nullable=True),
    sa.Column('reported_by', sa.String(length=20), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('task_id', sa.Uuid(), nullable=True),
    sa.Column('recorded_by_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_naloxone_events_episode_id_episodes')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_naloxone_events_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_naloxone_events_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_naloxone_events'))
    )
    op.create_index('ix_naloxone_events_episode_occurred', 'naloxone_events', ['episode_id', 'occurred_at'])
    op.create_index('ix_naloxone_events_kind_occurred', 'naloxone_events', ['kind', 'occurred_at'])
    op.create_table('medication_supplies',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('episode_id', sa.Uuid(), nullable=False),
    sa.Column('medication', sa.String(length=20), nullable=False),
    sa.Column('form', sa.String(length=60), nullable=True),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=False),
    sa.Column('days_supplied', sa.Integer(), nullable=False),
    sa.Column('covered_until', sa.Date(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fill_status', sa.String(length=12), nullable=False),
    sa.Column('fill_status_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_by_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_medication_supplies_episode_id_episodes')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'],
                            name=op.f('fk_medication_supplies_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medication_supplies'))
    )
    op.create_index('ix_medication_supplies_episode_started', 'medication_supplies', ['episode_id', 'started_on'])
    op.create_index('ix_medication_supplies_ends_at', 'medication_supplies', ['ends_at'])
    op.create_table('supply_escalations',
    sa.Column('supply_id', sa.Uuid(), nullable=False),
    sa.Column('task_id', sa.Uuid(), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['supply_id'], ['medication_supplies.id'],
                            name=op.f('fk_supply_escalations_supply_id_medication_supplies')),
    sa.PrimaryKeyConstraint('supply_id', name=op.f('pk_supply_escalations'))
    )
    # The outcomes report's new facts (a new fingerprint recounts every stored fact at the first
    # report or refresh after this migration).
    op.add_column('report_episode_facts', sa.Column('from_ed', sa.Boolean(), server_default=sa.false(),
                                                    nullable=False))
    op.add_column('report_episode_facts', sa.Column('disposition', sa.String(length=30), nullable=True))
    for column in REPORT_MS_COLUMNS:
        op.add_column('report_episode_facts', sa.Column(column, sa.BigInteger(), nullable=True))
    for table, name, insert, operation in _feed_triggers(postgresql):
        if postgresql:
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                       f"BEGIN {insert} RETURN NULL; END $$")
            op.execute(f"CREATE TRIGGER {name} AFTER {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")
        else:
            op.execute(f"CREATE TRIGGER {name} AFTER {operation} ON {table} BEGIN {insert} END")


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, name, _, _ in _feed_triggers(postgresql):
        op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    for column in (*REPORT_MS_COLUMNS, 'disposition', 'from_ed'):
        op.drop_column('report_episode_facts', column)
    op.drop_table('supply_escalations')
    op.drop_index('ix_medication_supplies_ends_at', table_name='medication_supplies')
    op.drop_index('ix_medication_supplies_episode_started', table_name='medication_supplies')
    op.drop_table('medication_supplies')
    op.drop_index('ix_naloxone_events_kind_occurred', table_name='naloxone_events')
    op.drop_index('ix_naloxone_events_episode_occurred', table_name='naloxone_events')
    op.drop_table('naloxone_events')
    op.drop_column('episodes', 'disposition')
