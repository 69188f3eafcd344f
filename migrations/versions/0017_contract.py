"""client ids: the request that first used a client-generated id, so that a retry is a no-op

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 13:45:00

Texts, handoffs and consents take a client-generated `id` (as encounters, tasks and appointments
do). Those three records keep no copy of the request (a text's body is rendered, a handoff's
deadlines defaulted), so the request's fingerprint lives in a table of its own: a retry days
later, after its Idempotency-Key is gone, is still recognised. A new table, not new columns:
`messages` and `handoffs` carry sync triggers that an SQLite batch rebuild would lose (0009).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('client_ids',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client_ids'))
    )


def downgrade():
    op.drop_table('client_ids')
