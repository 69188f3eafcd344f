"""continuity of treatment: discharge disposition, the naloxone log, medication supplies

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:10:00

`episodes.disposition` is added with a plain ALTER TABLE, never a batch rebuild: on SQLite a
rebuild of `episodes` would drop its sync triggers (see 0009). Episodes discharged before this
migration keep NULL, which the API shows as `unknown` (rewriting them would put every
discharged episode in the change feed at once).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('episodes', sa.Column('disposition', sa.String(length=30), nullable=True))


def downgrade():
    op.drop_column('episodes', 'disposition')
