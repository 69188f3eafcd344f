"""report facts: the outcomes report's stored facts and where in the change feed they stand

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21 23:20:00

The tables start empty and the state row unrefreshed: the first report (or the clock's refresh)
computes every episode's facts.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _cohort():
    return [sa.Column('discharged_at', sa.DateTime(timezone=True), nullable=False),
            sa.Column('coach_id', sa.Uuid(), nullable=True),
            sa.Column('presenting_reason', sa.String(length=20), nullable=False)]


def upgrade():
    op.create_table(
        'report_episode_facts',
        sa.Column('episode_id', sa.Uuid(), nullable=False),
        sa.Column('discharged', sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=True) for name in (
            'first_contact', 'first_follow_up', 'visit1', 'visit2', 'retained_visit', 'arrival', 'first_text',
            'opted_out', 'closed')),
        *_cohort(),
        sa.PrimaryKeyConstraint('episode_id', name=op.f('pk_report_episode_facts')))
    op.create_index('ix_report_episode_facts_discharged_at', 'report_episode_facts', ['discharged_at'])
    op.create_table(
        'report_handoff_facts',
        sa.Column('handoff_id', sa.Uuid(), nullable=False),
        sa.Column('episode_id', sa.Uuid(), nullable=False),
        sa.Column('method', sa.String(length=20), nullable=False),
        sa.Column('to_level', sa.String(length=30), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('accept_by', sa.BigInteger(), nullable=False),
        sa.Column('arrive_by', sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=True) for name in ('accepted', 'cancelled', 'arrived')),
        *_cohort(),
        sa.PrimaryKeyConstraint('handoff_id', name=op.f('pk_report_handoff_facts')))
    op.create_index('ix_report_handoff_facts_discharged_at', 'report_handoff_facts', ['discharged_at'])
    op.create_index('ix_report_handoff_facts_episode_id', 'report_handoff_facts', ['episode_id'])
    op.create_table(
        'report_text_facts',
        sa.Column('message_id', sa.Uuid(), nullable=False),
        sa.Column('episode_id', sa.Uuid(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('tried', sa.BigInteger(), nullable=False),
        *_cohort(),
        sa.PrimaryKeyConstraint('message_id', name=op.f('pk_report_text_facts')))
    op.create_index('ix_report_text_facts_discharged_at', 'report_text_facts', ['discharged_at'])
    op.create_index('ix_report_text_facts_episode_id', 'report_text_facts', ['episode_id'])
    state = op.create_table(
        'report_refresh_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('txid', sa.BigInteger(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_refresh_state')))
    op.bulk_insert(state, [{'id': 1, 'txid': 0, 'seq': 0, 'refreshed_at': None, 'fingerprint': ''}])


def downgrade():
    op.drop_table('report_refresh_state')
    op.drop_table('report_text_facts')
    op.drop_table('report_handoff_facts')
    op.drop_table('report_episode_facts')
