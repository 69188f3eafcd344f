"""episodes discharged_at index: the outcomes report's cohort is a range of discharges

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 20:19:49.731518

A plain CREATE INDEX, not a batch operation: on SQLite a batch rebuild of `episodes` would drop
its sync triggers (see 0009).
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_episodes_discharged_at', 'episodes', ['discharged_at'], unique=False)


def downgrade():
    op.drop_index('ix_episodes_discharged_at', table_name='episodes')
