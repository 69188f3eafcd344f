"""episode contacts: the last time each open episode's patient was reached, kept by triggers

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:30:00

The caseload and the review asked every open episode's encounters when the patient was last
reached: at 60,000 episodes (6,000 open, 600,000 encounters) that was most of the review's time.
`episode_contacts` holds the answer, one row per open episode reached at least once, written by
a trigger on `encounters` (a trigger, not the service: an encounter written any other way — a
bulk insert, a seeded benchmark — still counts) and removed by one on `episodes` when the
episode closes (the caseload and the review read open episodes only: a tenth of the rows). A
later batch migration of `episodes` or `encounters` on SQLite must create them again, like the
sync feed's (0009). Also the indexes the review reads: the open
episodes by coach (covering its pass over them) and in the orders of its lists.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

TRIGGER = "episode_contacts_from_encounters"
ON_CLOSE = "episode_contacts_end_with_episode"


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table('episode_contacts',
    sa.Column('episode_id', sa.Uuid(), nullable=False),
    sa.Column('last_reached_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.id'], name=op.f('fk_episode_contacts_episode_id_episodes')),
    sa.PrimaryKeyConstraint('episode_id', name=op.f('pk_episode_contacts')),
    sqlite_with_rowid=False
    )
    op.execute("INSERT INTO episode_contacts (episode_id, last_reached_at) "
               "SELECT encounters.episode_id, max(encounters.occurred_at) FROM encounters "
               "JOIN episodes ON episodes.id = encounters.episode_id "
               "WHERE encounters.outcome = 'reached' AND episodes.status = 'open' GROUP BY encounters.episode_id")
    latest = "GREATEST" if postgresql else "max"
    upsert = ("INSERT INTO episode_contacts (episode_id, last_reached_at) VALUES (NEW.episode_id, NEW.occurred_at) "
              "ON CONFLICT (episode_id) DO UPDATE SET last_reached_at = "
              f"{latest}(episode_contacts.last_reached_at, excluded.last_reached_at);")
    reached_while_open = ("NEW.outcome = 'reached' AND "
                          "EXISTS (SELECT 1 FROM episodes WHERE id = NEW.episode_id AND status = 'open')")
    forget = "DELETE FROM episode_contacts WHERE episode_id = NEW.id;"
    if postgresql:
        op.execute(f"CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN IF {reached_while_open} THEN {upsert} END IF; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON encounters FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()")
        op.execute(f"CREATE FUNCTION {ON_CLOSE}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN IF NEW.status <> 'open' THEN {forget} END IF; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER {ON_CLOSE} AFTER UPDATE OF status ON episodes "
                   f"FOR EACH ROW EXECUTE FUNCTION {ON_CLOSE}()")
    else:
        op.execute(f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON encounters WHEN {reached_while_open} "
                   f"BEGIN {upsert} END")
        op.execute(f"CREATE TRIGGER {ON_CLOSE} AFTER UPDATE OF status ON episodes WHEN NEW.status <> 'open' "
                   f"BEGIN {forget} END")
    op.create_index('ix_episodes_status_coach', 'episodes', ['status', 'coach_id', 'discharged_at', 'id'],
                    unique=False)
    op.create_index('ix_episodes_status_discharged_at_id', 'episodes', ['status', 'discharged_at', 'id'], unique=False)
    op.create_index('ix_episodes_status_opened_at_id', 'episodes', ['status', 'opened_at', 'id'], unique=False)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.drop_index('ix_episodes_status_opened_at_id', table_name='episodes')
    op.drop_index('ix_episodes_status_discharged_at_id', table_name='episodes')
    op.drop_index('ix_episodes_status_coach', table_name='episodes')
    for name, table in ((ON_CLOSE, "episodes"), (TRIGGER, "encounters")):
        op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_table('episode_contacts')
