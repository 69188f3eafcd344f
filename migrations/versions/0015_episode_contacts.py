"""episode contacts: the last time each episode's patient was reached, kept by a trigger

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:30:00

The caseload and the review asked every open episode's encounters when the patient was last
reached: at 60,000 episodes (6,000 open, 600,000 encounters) that was most of the review's time.
`episode_contacts` holds the answer, one row per episode reached at least once, written by a
trigger on `encounters` (a trigger, not the service: an encounter written any other way — a bulk
insert, a seeded benchmark — still counts). Also the indexes the review reads: the open
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
               "SELECT episode_id, max(occurred_at) FROM encounters WHERE outcome = 'reached' GROUP BY episode_id")
    latest = "GREATEST" if postgresql else "max"
    upsert = ("INSERT INTO episode_contacts (episode_id, last_reached_at) VALUES (NEW.episode_id, NEW.occurred_at) "
              "ON CONFLICT (episode_id) DO UPDATE SET last_reached_at = "
              f"{latest}(episode_contacts.last_reached_at, excluded.last_reached_at);")
    if postgresql:
        op.execute(f"CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN IF NEW.outcome = 'reached' THEN {upsert} END IF; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON encounters FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()")
    else:
        op.execute(f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON encounters WHEN NEW.outcome = 'reached' "
                   f"BEGIN {upsert} END")
    op.create_index('ix_episodes_status_coach', 'episodes', ['status', 'coach_id', 'discharged_at', 'id'],
                    unique=False)
    op.create_index('ix_episodes_status_discharged_at_id', 'episodes', ['status', 'discharged_at', 'id'], unique=False)
    op.create_index('ix_episodes_status_opened_at_id', 'episodes', ['status', 'opened_at', 'id'], unique=False)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.drop_index('ix_episodes_status_opened_at_id', table_name='episodes')
    op.drop_index('ix_episodes_status_discharged_at_id', table_name='episodes')
    op.drop_index('ix_episodes_status_coach', table_name='episodes')
    op.execute(f"DROP TRIGGER {TRIGGER}" + (" ON encounters" if postgresql else ""))
    if postgresql:
        op.execute(f"DROP FUNCTION {TRIGGER}()")
    op.drop_table('episode_contacts')
